"""Docstrings and comments point at modules, files and names that exist: a module that moved or
was split leaves no pointer to where it used to be."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*(ROOT / "zsdemo").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "tests").glob("*.py"),
           ROOT / "app.py", *(ROOT / "assets").glob("*.css")]
# A repository path: zsdemo/..., benchmarks/..., tests/..., docs/... (or app.py at the top).
PATH = re.compile(r"(?<![\w./-])((?:zsdemo|benchmarks|tests|docs)/[\w/.-]*\w|app\.py)\b")
# A dotted name in double backquotes, ``module.name``: its first part is judged when it is a
# module of the package. ``run.x`` is left alone: "run" names the Run objects too.
DOTTED = re.compile(r"``([A-Za-z_]\w*)\.([A-Za-z_][\w.]*)``")
NOT_JUDGED = {"run"}
FILE_SUFFIXES = {"py", "css"}         # ``server.py``: a source file, ours or a library's
LIBRARIES = ("open_clip", "gradio", "spaces")


def modules() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in (ROOT / "zsdemo").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found.setdefault(name.split(".")[-1], []).append(name)
    return found


def prose(path: Path) -> list[tuple[int, str]]:
    """The comments and docstrings of a source file (or a stylesheet's comments), with their line numbers."""
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".css":
        return [(source[:m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"/\*(.*?)\*/", source, re.S)]
    out = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
           if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if (doc := ast.get_docstring(node, clean=False)) is not None:
                out.append((node.body[0].lineno, doc))
    return out


def resolves(candidates: list[str], rest: str) -> bool:
    for full in candidates:
        try:
            obj = importlib.import_module(full)
            for part in rest.split("."):
                obj = getattr(obj, part)
            return True
        except (ImportError, AttributeError):
            continue
    return False


def stale(paths: list[Path]) -> list[str]:
    known = modules()
    shipped = {p.name for p in ROOT.rglob("*") if ".git" not in p.parts}
    for library in LIBRARIES:
        if (spec := importlib.util.find_spec(library)) is not None and spec.origin:
            shipped |= {p.name for p in Path(spec.origin).parent.rglob("*.py")}
    found = []
    for path in paths:
        for line, text in prose(path):
            where = f"{path.relative_to(ROOT) if ROOT in path.parents else path.name}:{line}"
            for m in PATH.finditer(text):
                if not (ROOT / m.group(1)).exists():
                    found.append(f"{where}: {m.group(1)}")
            for m in DOTTED.finditer(text):
                head, rest = m.groups()
                if head in NOT_JUDGED or (head in known and resolves(known[head], rest)):
                    continue
                if rest in FILE_SUFFIXES:          # a file name: ``server.py``
                    if f"{head}.{rest}" not in shipped:
                        found.append(f"{where}: {head}.{rest}")
                elif head in known:
                    found.append(f"{where}: {head}.{rest}")
    return found


def test_every_module_file_and_name_a_comment_points_at_exists():
    assert stale(SOURCES) == []


def test_the_check_finds_a_pointer_to_a_module_that_moved(tmp_path):
    moved = tmp_path / "moved.py"
    moved.write_text('"""See ``backend.run`` in zsdemo/app/backend.py and ``pipeline.no_such``."""\n'
                     "# ``panels.py`` writes it; ``choices.load_served`` loads it; ``page_backend.py`` did\n")
    assert sorted(s.split(": ", 1)[1] for s in stale([moved])) == ["page_backend.py", "pipeline.no_such",
                                                                   "zsdemo/app/backend.py"]
    css = tmp_path / "old.css"
    css.write_text("/* zsdemo/panels.py writes the markup */\n.x {}\n")
    assert [s.split(": ", 1)[1] for s in stale([css])] == ["zsdemo/panels.py"]
