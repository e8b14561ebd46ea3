"""The front page and the documentation: a README a Space visitor reads, every reference kept in
docs/, every relative link resolving, and CI running the README's own commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FRONT_PAGE_MAX = 15_000


def slug(heading: str) -> str:
    """The anchor GitHub and the Hub give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    fenced, found = False, set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.*)", line)):
            found.add(slug(m.group(1)))
    return found


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)   # code is not a link
    text = re.sub(r"`[^`\n]*`", "", text)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_front_page_is_short_and_has_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text) <= FRONT_PAGE_MAX, len(text)
    assert "```bash\n./install.sh && python app.py\n```" in text and "```bash\npython -m pytest\n```" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\n./install.sh\n" in ci and ci.rstrip().endswith("python -m pytest")
    for lesson in ("crane", "cats", "prompt", "unsure"):
        assert f"?lesson={lesson}" in text


def test_every_document_is_on_the_front_pages_map():
    linked = {(ROOT / t.split("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    assert set(PAGES[1:]) <= linked, set(PAGES[1:]) - linked


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    links = relative_links(page)
    for target in links:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target}"
        assert ROOT in resolved.parents or resolved == ROOT, f"{page.name}: {target} leaves the repository"
        if anchor:
            assert resolved.suffix == ".md" and anchor in anchors(resolved), f"{page.name}: {target}"


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](page.md#title) [gone](missing.md) [web](https://example.org) `[no](x)`\n"
                    "```\n[not a link](nowhere.md)\n```\n")
    assert relative_links(page) == ["page.md#title", "missing.md"]
    assert "title" in anchors(page) and slug("API (`gradio_client`)") == "api-gradio_client"
