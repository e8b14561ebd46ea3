"""The package as a stranger installs it: a wheel built from this checkout, installed into an empty
folder, run from another empty folder (so nothing of the checkout can be read by accident)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The wheel installed into an empty target folder, and the environment that uses it alone."""
    wheels, target = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("target")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(wheels.glob("zsdemo-*.whl"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = str(target)          # ahead of site-packages, where an editable install may point here
    return target, env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_the_wheel_holds_every_subpackage_and_the_shipped_files(installed):
    target, _ = installed
    package = target / "zsdemo"
    for part in ("strategies/__init__.py", "strategies/dclip.py", "app/page.py", "assets/images/cat.png",
                 "assets/descriptors/dclip.json", "assets/descriptors/cupl.json", "assets/app.css",
                 "assets/how_it_works.md", "assets/imagenet_wnids.txt", "assets/imagenet_subsets.json",
                 "assets/LICENSES.md", "assets/model_configs/zsdemo-tiny.json"):
        assert (package / part).is_file(), part


def test_every_subpackage_is_in_the_wheel_list_and_the_assets_are_found_from_anywhere(tmp_path):
    """pyproject lists the packages (the top-level assets/ folder is mapped into zsdemo.assets);
    a new subpackage must be added there. From another folder, the editable install and a
    checkout read the top-level assets/."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "zsdemo").rglob("__init__.py")}
    assert found | {"zsdemo.assets"} == listed
    assert not (ROOT / "zsdemo" / "assets").exists() and (ROOT / "assets" / "app.css").is_file()
    code = "from zsdemo.core.resources import ASSETS; print(ASSETS)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)                       # as a Space runs the checkout
    out = _run([sys.executable, "-c", code], tmp_path, env)
    assert out.returncode == 0 and Path(out.stdout.strip()) == ROOT / "assets", out.stderr[-2000:]


def test_the_wheels_metadata_carries_the_licence_the_readme_and_the_direct_dependencies(installed):
    target, _ = installed
    info = next(target.glob("zsdemo-*.dist-info"))
    meta = (info / "METADATA").read_text(encoding="utf-8")
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    assert (info / "licenses" / "LICENSE").read_text().startswith("MIT License")
    assert "Description-Content-Type: text/markdown" in meta and "# zsdemo" in meta     # the README
    assert "Project-URL: " in meta
    required = {re.split(r"[<>=!~; \[]", line.split(":", 1)[1].strip())[0].lower() for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert {"httpx", "safehttpx", "huggingface-hub", "pydantic", "starlette", "pillow", "numpy"} <= \
        {r.replace("_", "-") for r in required}


# Import names that are not their distribution's name.
DISTRIBUTIONS = {"PIL": "pillow", "open_clip": "open-clip-torch", "huggingface_hub": "huggingface-hub"}


def test_every_package_zsdemo_imports_is_declared_and_pinned():
    """What the code imports is in pyproject's dependencies (a range) and requirements.txt (pinned)."""
    import tomllib

    imported = set()
    for path in (ROOT / "zsdemo").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            found = re.match(r"\s*(?:import\s+([A-Za-z_]\w*)|from\s+([A-Za-z_]\w*)[\w.]*\s+import\b)", line)
            if found:
                imported.add(found.group(1) or found.group(2))
    third_party = {DISTRIBUTIONS.get(m, m).replace("_", "-").lower() for m in imported
                   if m not in sys.stdlib_module_names and m != "zsdemo"}
    third_party.discard("spaces")     # ZeroGPU's decorator: optional (the zerogpu extra), imported if present
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=\[ ]", d)[0].replace("_", "-").lower() for d in project["dependencies"]}
    assert third_party <= declared, third_party - declared
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.split(r"\[", name)[0].replace("_", "-").lower()] = version
    assert third_party <= set(pins), third_party - set(pins)
    assert all(re.fullmatch(r"\d+(\.\d+)+", v) for v in pins.values()), pins      # every line pins one version


def test_the_installed_command_classifies_from_an_empty_folder(installed, tmp_path):
    target, env = installed
    shutil.copy(ROOT / "assets" / "images" / "cat.png", tmp_path / "photo.png")
    where = _run([sys.executable, "-c", "import zsdemo; print(zsdemo.__file__)"], tmp_path, env)
    assert where.stdout.strip() == str(target / "zsdemo" / "__init__.py")     # the wheel's copy, not this checkout
    done = _run([str(target / "bin" / "zsdemo"), "classify", "photo.png", "--classes", "tabby cat, dog, crane",
                 "--strategies", "dclip,hierarchy", "--model", "tiny-random", "--json"], tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    strategies = result["images"][0]["strategies"]
    assert set(strategies) >= {"dclip", "hierarchy"}
    # dclip read the shipped descriptors, which cover these classes; the hierarchy read WordNet.
    assert any("zsdemo's own" in w and "cover 3 of the 3" in w for w in result["warnings"]), result["warnings"]
    assert all(c["described"] for c in strategies["dclip"]["details"]["classes"])
    assert {s["name"]: s["chosen"]["synset"] for s in result["senses"]}["tabby cat"] == "tabby.n.01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_zsdemo_serve_from_the_installed_package_answers_a_client(installed, tmp_path):
    from gradio_client import Client, handle_file

    target, env = installed
    port = _free_port()
    server = subprocess.Popen([str(target / "bin" / "zsdemo"), "serve", "--model", "tiny-random", "--device", "cpu",
                               "--port", str(port), "--no-warm-up", "--feature-cache", "none"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer within 2 minutes"
                time.sleep(0.5)
        client = Client(url, verbose=False)
        assert "tiny-random" in json.dumps(client.predict(api_name="/options"))
        shutil.copy(ROOT / "assets" / "images" / "cat.png", tmp_path / "photo.png")
        result = client.predict([handle_file(str(tmp_path / "photo.png"))], "cat, dog", strategies="name,dclip",
                                api_name="/classify")
        assert set(result["images"][0]["strategies"]) == {"name", "dclip"}
    finally:
        server.terminate()
        server.wait(30)
