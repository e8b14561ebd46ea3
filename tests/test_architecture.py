"""The shape the code promises (docs/architecture.md's "Layout"): rooms whose imports all run one way, a page
of small functions, and methods whose options are named only in their own modules."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("architecture", ROOT / "benchmarks" / "architecture.py")
architecture = importlib.util.module_from_spec(spec)
spec.loader.exec_module(architecture)

# Each room imports only from the rooms before it (and from itself).
ROOMS = ["core", "prompts", "engine", "wordnet", "data", "strategies", "run", "app"]


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else None


def test_no_import_circles_not_even_type_only_ones():
    assert architecture.cycles(architecture.graph(ROOT / "zsdemo")) == []


def test_every_import_runs_downhill():
    graph = architecture.graph(ROOT / "zsdemo")
    uphill = [(a, b) for a, targets in graph.items() for b in targets
              if room(a) in ROOMS and room(b) in ROOMS and ROOMS.index(room(b)) > ROOMS.index(room(a))]
    assert uphill == []


def test_a_strategy_module_imports_no_other_strategy():
    graph = architecture.graph(ROOT / "zsdemo")
    shared = {"zsdemo.strategies.base", "zsdemo.strategies.options"}
    for module, targets in graph.items():
        if module.startswith("zsdemo.strategies.") and module not in shared:
            assert {t for t in targets if t.startswith("zsdemo.strategies")} <= shared, module


def test_only_the_page_imports_gradio():
    for path in (ROOT / "zsdemo").rglob("*.py"):
        if "app" not in path.relative_to(ROOT / "zsdemo").parts:
            assert not re.search(r"^\s*(import|from) gradio", path.read_text(), re.M), path


def test_the_page_is_built_from_small_functions():
    long = [(n, where) for n, where in architecture.functions(ROOT / "zsdemo" / "app") if n > 80]
    assert long == []


def test_no_option_name_is_written_outside_its_method():
    assert architecture.knob_mentions(ROOT / "zsdemo") == {}


APP_MODULE_LINES = 400


def test_no_module_of_the_app_is_over_400_lines():
    long = {p.name: n for p in (ROOT / "zsdemo" / "app").glob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > APP_MODULE_LINES}
    assert long == {}


def test_no_module_of_the_app_re_exports_what_it_imports():
    """A name is used from where it lives: no "noqa: F401" imports kept for others to read."""
    found = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "zsdemo" / "app").rglob("*.py")
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if "noqa: F401" in line and "I001" not in line and p.name != "__init__.py"]
    assert found == []


def test_one_function_opens_a_run():
    """A strategies.Run (what every batch of a request shares) is made only by pipeline.open_run,
    for classify and evaluate alike, and re-made from an opened one by pipeline.reopen (the shots
    curve's draws)."""
    import ast

    makers = []
    for path in (ROOT / "zsdemo").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports_run = path.name == "base.py" and path.parent.name == "strategies" or any(
            isinstance(n, ast.ImportFrom) and (n.module or "").endswith("strategies") and
            any(a.name == "Run" for a in n.names) or
            isinstance(n, ast.ImportFrom) and (n.module or "").endswith("strategies.base") and
            any(a.name == "Run" for a in n.names) for n in ast.walk(tree))
        if not imports_run:
            continue
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for call in ast.walk(fn):
                    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Run":
                        makers.append(f"{path.relative_to(ROOT)}:{fn.name}")
    assert sorted(set(makers)) == ["zsdemo/run/pipeline.py:open_run", "zsdemo/run/pipeline.py:reopen"]
    source = "".join((ROOT / "zsdemo" / "run" / name).read_text() for name in ("evaluation.py", "pipeline.py"))
    assert source.count("open_run(loaded, request, cache") == 2        # classify's and evaluate's


def test_the_request_inputs_come_from_one_table():
    """The API's arguments, the command line's request flags and the page's advanced controls are
    made from run/inputs.py: none of them is written out by hand on those surfaces."""
    from zsdemo.run import inputs

    api = (ROOT / "zsdemo" / "app" / "api.py").read_text()
    cli = (ROOT / "zsdemo" / "cli.py").read_text()
    page = (ROOT / "zsdemo" / "app" / "inputs.py").read_text()
    for item in {i.name: i for s in inputs.SURFACES for e in inputs.ENDPOINTS for i in inputs.inputs(s, e)}.values():
        assert f'("{item.name}",' not in api, item.name            # no arg("top_k", ...) written out
        if any(item.offered("cli", e) for e in inputs.ENDPOINTS):
            assert f'"{item.flag}"' not in cli, item.flag
        if any(item.offered("page", e) for e in inputs.ENDPOINTS):
            assert f'"{item.label[:30]}' not in page, item.name             # its words come from the table
        if item.page_area == "advanced":
            assert f'v["{item.name}"]' not in page, item.name


def test_the_methods_options_are_routed_in_one_place():
    """Only prepare_request (run/request.py) routes options by public name to their methods; the
    surfaces check the names early and hand the values on."""
    callers = [str(p.relative_to(ROOT)) for p in (ROOT / "zsdemo").rglob("*.py")
               if "route_options(" in p.read_text(encoding="utf-8") and p.name != "__init__.py"]
    assert callers == ["zsdemo/run/request.py"]
