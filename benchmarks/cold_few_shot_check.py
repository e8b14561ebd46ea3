"""A check, not a timing: visitors of a cold server get what one visitor gets.

The app is started as its own process (``python app.py``, the warm-up on, empty caches, the tiny
random-weight model by default). The moment its port answers, several visitors at once send the
few-shot and shots-curve requests (3 x ``/classify`` with linear-probe, gda and tip and a support
zip, 2 x ``/classify`` with name and hierarchy, 2 x ``/evaluate`` with a shots curve), while the
warm-up is still running. Then the same requests one at a time; every answer must be equal (the
curve's own ``seconds`` aside). Printed: errors, whether the answers match, and when the warm-up
ended against when the visitors were answered.

    python benchmarks/cold_few_shot_check.py [--model tiny-random] [--port 7931]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.few_shot import CLASSES, make_support  # noqa: E402
from benchmarks.shots import make_evaluated  # noqa: E402


def _zip(folder: Path, path: Path) -> str:
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(folder.rglob("*.jpg")):
            z.write(f, f.relative_to(folder))
    return str(path)


def main() -> int:
    from gradio_client import Client, handle_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--port", type=int, default=7931)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zsdemo-cold-"))
    support = _zip(make_support(tmp / "support"), tmp / "support.zip")
    evaluated = _zip(make_evaluated(tmp / "evaluated"), tmp / "evaluated.zip")
    image = str(next((tmp / "evaluated" / "cat").glob("*.jpg")))
    classes = ", ".join(CLASSES)
    cache = tmp / "cache"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ZSDEMO_FEATURE_CACHE": str(cache), "HOME": str(tmp / "home")}
    began = time.monotonic()
    server = subprocess.Popen([sys.executable, "app.py", "--model", args.model, "--device", "cpu", "--port",
                               str(args.port), "--feature-cache", str(cache)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: list[tuple[float, str]] = []
    threading.Thread(target=lambda: [log.append((time.monotonic() - began, line)) for line in server.stdout],
                     daemon=True).start()
    while True:
        try:
            socket.create_connection(("127.0.0.1", args.port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    url = f"http://127.0.0.1:{args.port}/"

    def few_shot(c: Client) -> dict:
        r = c.predict([handle_file(image)], classes, strategies="linear-probe,gda,tip", support=handle_file(support),
                      api_name="/classify")
        return {s: v["probs"] for s, v in r["images"][0]["strategies"].items()}

    def hierarchy(c: Client) -> dict:
        r = c.predict([handle_file(image)], "cat, crane, heron, rocket", strategies="name,hierarchy",
                      api_name="/classify")
        return {s: v["probs"] for s, v in r["images"][0]["strategies"].items()}

    def curve(c: Client) -> dict:
        r = c.predict(handle_file(evaluated), "name,clip80", views="flip", support=handle_file(support),
                      shots="1,2,4", seeds=2, api_name="/evaluate")
        return {"curve": {k: v for k, v in r["shots_curve"].items() if k != "seconds"}, "accuracy": r["accuracy"]}

    requests = {"few_shot": few_shot, "hierarchy": hierarchy, "curve": curve}
    visitors = ["few_shot"] * 3 + ["hierarchy"] * 2 + ["curve"] * 2
    answers: list[tuple[str, dict]] = []
    errors: list[str] = []

    def visit(name: str) -> None:
        try:
            answers.append((name, requests[name](Client(url, verbose=False))))
        except Exception as e:          # reported below: the check is that there are none
            errors.append(f"{name}: {e!r}"[:300])

    sent = time.monotonic() - began
    threads = [threading.Thread(target=visit, args=(v,)) for v in visitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent = time.monotonic() - began
    client = Client(url, verbose=False)
    single = {name: fn(client) for name, fn in requests.items()}
    same = {name: all(a == single[name] for n, a in answers if n == name) for name in requests}
    deadline = time.monotonic() + 900
    while not any("warm-up ended" in line for _, line in log) and time.monotonic() < deadline:
        time.sleep(1)
    ended = next((t for t, line in log if "warm-up ended" in line), None)
    server.terminate()
    server.wait(10)
    print(f"{len(visitors)} visitors sent at {sent:.1f} s (the port answering), all answered at {concurrent:.1f} s; "
          f"the warm-up ended at {'never' if ended is None else f'{ended:.1f} s'}")
    print(f"errors: {len(errors)} {errors}")
    print(f"equal to the one-at-a-time answers: {same}")
    return 0 if not errors and all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
