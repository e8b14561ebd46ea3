"""The shape of the package, in figures: modules per folder, import floors, import circles,
the longest functions, and how often the methods' option names are written outside them.

    python benchmarks/architecture.py [--root zsdemo]

Every import counts, type-only and function-level ones too. "Floors" is the longest chain of
imports between zsdemo's own modules (a module importing nothing of zsdemo is on floor 1).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from pathlib import Path

# The knobs issue 27 counted (their API names), and the folder allowed to name them.
KNOBS = ("coop_epochs", "coop_context", "tip_alpha", "tip_beta", "val_fraction", "perception_temperature",
         "tpt_steps", "tpt_views", "wordnet_keep", "rerank_top")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path, known: set[str]) -> set[str]:
    """zsdemo modules that ``path`` imports (anywhere in the file)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == root.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != root.name:
                continue
            for a in node.names:                     # "from . import x" imports the module x
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
    out.discard(name)
    return {m for m in out if m in known}


def graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {m: imports(p, root, set(files)) for m, p in files.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def floors(g: dict[str, set[str]]) -> tuple[int, list[str]]:
    """The longest import chain (modules in a circle count once), and one such chain."""
    memo: dict[str, list[str]] = {}

    def chain(v: str, seen: frozenset[str]) -> list[str]:
        if v in memo:
            return memo[v]
        best: list[str] = []
        for w in g[v]:
            if w not in seen:
                c = chain(w, seen | {w})
                if len(c) > len(best):
                    best = c
        memo[v] = [v, *best]
        return memo[v]

    longest = max((chain(v, frozenset({v})) for v in g), key=len)
    return len(longest), longest


def functions(root: Path) -> list[tuple[int, str]]:
    rows = []
    for p in root.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                rows.append((node.end_lineno - node.lineno + 1, f"{p}:{node.lineno} {node.name}"))
    return sorted(rows, reverse=True)


def knob_mentions(root: Path) -> Counter:
    """Occurrences of each knob's name in files outside strategies/, per file. The operator's
    limit on TPT's views (``LIMITS.tpt_views``, ``--max-tpt-views``) shares a knob's name but is a
    server limit like the others: it is not counted."""
    found: Counter = Counter()
    pattern = re.compile(r"(?<!LIMITS\.)(?<!LimitInfo\(\")\b(" + "|".join(KNOBS) + r")\b(?!: int$)", re.M)
    for p in [*root.rglob("*.py"), root.parent / "app.py"]:
        if not p.exists() or "strategies" in p.relative_to(root.parent).parts:
            continue
        n = len(pattern.findall(p.read_text()))
        if n:
            found[str(p.relative_to(root.parent))] = n
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / "zsdemo"))
    root = Path(parser.parse_args().root).resolve()
    g = graph(root)
    per_folder = Counter(str(Path(*m.split(".")[:-1])) if not (root.parent / Path(*m.split("."))).is_dir()
                         else str(Path(*m.split("."))) for m in g)
    print("modules per folder:")
    for folder, n in sorted(per_folder.items()):
        print(f"  {folder + '/':<24} {n}")
    depth, chain = floors(g)
    print(f"import floors: {depth}  ({' -> '.join(chain)})")
    found = cycles(g)
    print(f"import circles: {len(found)}" + "".join(f"\n  {' <-> '.join(c)}" for c in found))
    rows = functions(root)
    print("longest functions:")
    for n, where in rows[:5]:
        print(f"  {n:4d} lines  {where}")
    mentions = knob_mentions(root)
    print(f"option names outside zsdemo/strategies/: {sum(mentions.values())}"
          + "".join(f"\n  {f}: {n}" for f, n in mentions.most_common()))


if __name__ == "__main__":
    main()
