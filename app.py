"""The Hugging Face Space's entry point, and ``python app.py`` in a checkout.

The page lives in ``zsdemo/app/``; ``zsdemo serve`` starts the same page from an installed
package, with the same flags (``python app.py --help`` lists them).
"""

from zsdemo.app import build_app, launch, main  # noqa: F401  (tests and scripts use them from here)

if __name__ == "__main__":
    main()
