"""What SuS found in the visitor's photos (``data/pool.py``), as the page shows it beside the methods'
panels: per class, the photos the model took as its examples, each with its cosine to the class's
text, and a mark where the photo is nearer another class's text (the class found nothing close)."""

from __future__ import annotations

from typing import Any

from ..core.markup import html, kept_picture

SHOWN = 8                 # photos pictured per class


def found_html(sus: dict[str, Any] | None, thumbnails: dict[str, str]) -> str:
    """The section, or "" when the run had no pool."""
    if not sus:
        return ""
    rows = []
    for name, examples in sus.get("classes", {}).items():
        figures = []
        for x in examples[:SHOWN]:
            other = (f'<br><span class="zs-found-other">nearer {html(x["nearest_class"])}</span>'
                     if x["nearest_class"] != name else "")
            figures.append(kept_picture(thumbnails.get(x["file"], ""), x["file"],
                                        f'{html(x["file"])}<br>cos {x["cosine"]:.3f}{other}'))
        rows.append(f'<div class="zs-found-class"><h4>{html(name)}</h4><div class="zs-views">{"".join(figures)}'
                    '</div></div>')
    notes = "".join(f"<li>{html(n)}</li>" for n in sus.get("notes", []))
    return ('\n\n<section class="zs-panel zs-panel-sus">\n<h3>What the model found in your photos (SuS)</h3>\n'
            f'<div class="zs-caption">For each class, the {sus.get("k")} of your {sus.get("pool_size")} photos '
            f'({html(sus.get("pool", ""))}) nearest to its text: the examples the few-shot methods used, found '
            'without a label.</div>\n' + "".join(rows) + (f"<ul>{notes}</ul>" if notes else "") + "\n</section>")
