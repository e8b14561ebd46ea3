"""Numbers shared by the command line, the app and the library, as data (no imports)."""

DEFAULT_TOP_K = 5                  # classes listed per strategy
MAX_TOP_K = 20
EVAL_BATCH_SIZE = 32               # images per encoder step of an evaluation, each with its views
# Strategies picked when none are named: the app's and the evaluation's (with WordNet re-ranking),
# and the command line's classify and the API's (no WordNet needed).
DEFAULT_STRATEGIES: tuple[str, ...] = ("name", "photo", "clip80", "hierarchy")
CLASSIFY_DEFAULT: tuple[str, ...] = ("name", "photo", "clip80")

# SuS (SuS-X's support set found in the user's own photos): images per class, and the most asked.
SUS_K = 4
MAX_SUS_K = 64
