"""Cold start: what the first visitor of a freshly started server waits for.

The app is started as its own process on loopback (``python app.py``, the warm-up on, an empty
feature cache). The moment its port answers, four visitors each send one hierarchy request
(``name,hierarchy``, 6 classes, one photo) at once. Printed:

- ``port``: seconds from the start to the port answering (imports, building the page);
- ``first answer``: seconds from the start to the first of the four answers, and ``all four``;
- ``warm-up``: the warm-up's own duration, from the server's log (loading the model, WordNet,
  the four examples, every class preset's text features);
- failures among the four (target 0);

against the baseline ``model load``: loading the same model alone in a fresh process
(``python -c 'zsdemo.load_model(...)'``), measured in the same run.

    python benchmarks/cold_start.py [--model ViT-B-32] [--threads 2] [--visitors 4]
                                    [--strategies name,hierarchy] [--no-warm-up-wait]

``--model ViT-B-32`` (the default) is the served preset's architecture with random weights:
the same compute as the real weights, which cannot be downloaded here.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "images" / "cat.png"
CLASSES = "crane, heron, stork, excavator, cat, dog"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_load_seconds(model: str, env: dict[str, str]) -> float:
    code = ("import time, zsdemo; t = time.perf_counter(); zsdemo.load_model(%r, device='cpu'); "
            "print(time.perf_counter() - t)") % model
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                                check=True).stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    parser.add_argument("--visitors", type=int, default=4)
    parser.add_argument("--strategies", default="name,hierarchy", help="what each visitor asks for")
    parser.add_argument("--no-warm-up-wait", action="store_true", help="stop once the visitors are answered")
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    baseline = model_load_seconds(args.model, env)
    port, cache = free_port(), tempfile.mkdtemp()
    log = Path(cache) / "server.log"
    began = time.perf_counter()
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--model", args.model, "--device", "cpu",
                                   "--port", str(port), "--feature-cache", cache], cwd=ROOT, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the app exited during start-up:\n{log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        port_s = time.perf_counter() - began
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        answered: list[float] = []

        def visit(_: int) -> str | None:
            try:
                out = client.predict([handle_file(str(PHOTO))], CLASSES, args.strategies, api_name="/classify")
                answered.append(time.perf_counter() - began)
                return None if out["images"][0]["error"] is None else out["images"][0]["error"]
            except Exception as e:
                return f"{type(e).__name__}: {e}"

        with ThreadPoolExecutor(args.visitors) as pool:
            failures = [f for f in pool.map(visit, range(args.visitors)) if f]
        deadline = time.monotonic() + (0 if args.no_warm_up_wait else 1800)
        while "warm-up ended after" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(1)
        found = re.search(r"warm-up ended after ([\d.]+) s \((\d+) of (\d+) steps, (\d+) failed\)", log.read_text())
    finally:
        server.terminate()
        server.wait(30)
    first, last = min(answered, default=float("nan")), max(answered, default=float("nan"))
    print(f"model {args.model}, {args.threads} torch threads, {args.visitors} visitors sending {args.strategies} "
          "the moment the port answers")
    print(f"baseline  model load alone: {baseline:6.1f} s")
    print(f"port answers:            {port_s:6.1f} s  ({port_s / baseline:.2f}x the model load)")
    print(f"first answer:            {first:6.1f} s  ({first / baseline:.2f}x)")
    print(f"all {args.visitors} answered:          {last:6.1f} s  ({last / baseline:.2f}x)")
    if found:
        seconds, done, steps, failed = found.groups()
        print(f"warm-up:                 {float(seconds):6.1f} s  ({float(seconds) / baseline:.2f}x; "
              f"{done} of {steps} steps, {failed} failed)")
    elif not args.no_warm_up_wait:
        print("warm-up: did not end within 30 minutes")
    print(f"failed requests: {len(failures)} of {args.visitors}" + (f": {failures[:2]}" if failures else ""))


if __name__ == "__main__":
    main()
