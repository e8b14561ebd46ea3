"""Text that reaches the page as Markdown or HTML, escaped (no Gradio here).

Class names, file names, glosses and descriptors come from users or data files: they must show as
text, never as markup. The panels and each strategy's ``explain`` write through these.
"""

from __future__ import annotations

import html as _html
import re
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md(text: Any) -> str:
    """Text shown literally inside Markdown: HTML escaped, Markdown punctuation backslashed, and
    never autolinked (the page's Markdown links bare "http://..." and e-mail addresses, backslashes
    and all): the ":" of "://" and the "@" are written as entities, which show the same."""
    escaped = _MD_SPECIAL.sub(r"\\\1", _html.escape(str(text), quote=False)).replace("\n", " ")
    return escaped.replace("://", "&#58;//").replace("@", "&#64;")


def html(text: Any, quote: bool = True) -> str:
    """Text shown literally in HTML (``quote=False``: between tags only, where quotes may stay)."""
    return _html.escape(str(text), quote=quote)


LONG_WORD = 24          # a run of characters past this many may break (a URL-like class name)
_LONG = re.compile(r"\S{%d,}" % (LONG_WORD + 1))


def breakable(text: Any) -> str:
    """Text shown literally in HTML that wraps between words only, except a "word" longer than
    LONG_WORD characters, which may break every 16 (``<wbr>``): it would otherwise push its
    box wider than the screen."""
    out, last = [], 0
    text = str(text)
    for m in _LONG.finditer(text):
        word = m.group(0)
        out += [html(text[last:m.start()], quote=False),
                "<wbr>".join(html(word[k:k + 16], quote=False) for k in range(0, len(word), 16))]
        last = m.end()
    return "".join(out) + html(text[last:], quote=False)


def kept_picture(url: str, name: str, caption: str) -> str:
    """A support or pool photo the page kept (``data:image/jpeg;base64,`` only; anything else is
    "no picture kept") with its caption (HTML, escaped by the caller), as a ``zs-view`` figure."""
    picture = (f'<img src="{html(url)}" alt="{html(name)}">' if url.startswith("data:image/jpeg;base64,")
               else '<div class="zs-missing">no picture kept</div>')
    return f'<figure class="zs-view">{picture}<figcaption>{caption}</figcaption></figure>'


def code(text: Any) -> str:
    """Text in a Markdown code span, where backslash escapes would show literally."""
    return "`" + _html.escape(str(text), quote=False).replace("`", "'") + "`"


def percent(p: float) -> str:
    return f"{100 * p:.1f}%"
