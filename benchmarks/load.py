"""Load test: many concurrent gradio_client users mixing valid and malformed requests.

The app is started as its own process on loopback (``python app.py``, default queue and
concurrency). ``--clients`` threads, each with its own gradio_client, send ``--requests``
``/classify`` requests one after the other; every ``--bad-every``-th request is malformed
(rotating through: no class names, an unknown strategy, a non-image file, a template without
``{}``, too many TPT views). The whole run is bounded in count (clients x requests) and in time
(``--timeout``; a request that does not finish in time counts as an error).

Printed: errors on valid requests (target 0), malformed requests answered with a message
(target: all), p50/p95/max latency of valid requests, and the server's RSS after a concurrent
warm-up and at the end (target: growth at most 10%).

    python benchmarks/load.py [--model tiny-random|ViT-B-32] [--clients 20] [--requests 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = [ROOT / "assets" / "images" / n for n in ("cat.png", "coffee.png", "rocket.jpg", "astronaut.png")]
CLASSES = "cat, dog, coffee mug, rocket, astronaut, crane, heron, teapot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def malformed(k: int, junk: Path, handle_file) -> tuple[tuple, dict, str]:
    """The k-th malformed request: (args, kwargs, a fragment of the expected message)."""
    image = [handle_file(str(IMAGES[0]))]
    cases = [
        ((image, " , "), {}, "No class names"),
        ((image, CLASSES), {"strategies": "name,nonsense"}, "Unknown strategy"),
        (([handle_file(str(junk))], CLASSES), {}, "not an image"),
        ((image, CLASSES), {"strategies": "custom", "templates": "a photo"}, "placeholder"),
        ((image, CLASSES), {"strategies": "tpt", "tpt_views": 100_000}, "TPT views"),
    ]
    return cases[k % len(cases)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", help="tiny-random or an architecture (random weights)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--bad-every", type=int, default=4, help="every n-th request is malformed")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole run")
    parser.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--model", args.model, "--device", "cpu",
                               "--port", str(port), "--feature-cache", "none"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    junk = Path(tempfile.mkdtemp()) / "notes.jpg"
    junk.write_text("not an image")
    try:
        for _ in range(180):
            try:
                Client(url, verbose=False)
                break
            except Exception:
                if server.poll() is not None:
                    raise RuntimeError("the app exited during start-up")
                time.sleep(1)
        else:
            raise RuntimeError("the app did not start within 3 minutes")
        deadline = time.monotonic() + args.timeout
        lock = threading.Lock()
        latencies: list[float] = []
        valid_errors: list[str] = []
        bad_ok, bad_wrong = [0], []

        def user(client_id: int, count: int, record: bool) -> None:
            client = Client(url, verbose=False)
            for r in range(count):
                remaining = deadline - time.monotonic()
                n = client_id * count + r
                bad = args.bad_every > 0 and n % args.bad_every == args.bad_every - 1
                if bad:
                    a, kw, expect = malformed(n // args.bad_every, junk, handle_file)
                else:
                    images = [handle_file(str(IMAGES[(n + j) % len(IMAGES)])) for j in range(1 + n % 2)]
                    a, kw, expect = (images, CLASSES), {"strategies": "name,photo,clip80"}, ""
                start = time.perf_counter()
                try:
                    if remaining <= 0:
                        raise TimeoutError("the run's time limit passed before this request")
                    out = client.submit(*a, api_name="/classify", **kw).result(timeout=remaining)
                    error = "no error for a malformed request" if bad else None
                    if not bad and any(im["error"] for im in out["images"]):
                        error = "an image failed: " + next(im["error"] for im in out["images"] if im["error"])
                    if bad and expect == "not an image" and out["images"][0]["error"]:
                        error = None if expect in out["images"][0]["error"] else out["images"][0]["error"]
                except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the run
                    error = f"{type(e).__name__}: {e}"
                    if bad and expect in str(e) and "Traceback" not in str(e):
                        error = None
                elapsed = time.perf_counter() - start
                if not record:
                    continue
                with lock:
                    if bad:
                        if error is None:
                            bad_ok[0] += 1
                        else:
                            bad_wrong.append(error)
                    elif error is None:
                        latencies.append(elapsed)
                    else:
                        valid_errors.append(error)

        # Warm-up: every client once, concurrently, so that the allocator reaches its working size.
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda c: user(c, 1, False), range(args.clients)))
        warm, warm_threads = status(server.pid, "VmRSS") / 1024, status(server.pid, "Threads")
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda c: user(c, args.requests, True), range(args.clients)))
        wall = time.perf_counter() - start
        end, end_threads = status(server.pid, "VmRSS") / 1024, status(server.pid, "Threads")
    finally:
        server.terminate()
        server.wait(timeout=30)
    total = args.clients * args.requests
    valid = total - bad_ok[0] - len(bad_wrong)
    q = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    print(f"{args.model} on CPU ({args.threads} threads), {args.clients} clients x {args.requests} requests "
          f"({valid} valid, {total - valid} malformed), {wall:.1f} s, {total / wall:.1f} requests/s")
    print(f"errors on valid requests: {len(valid_errors)}   target 0")
    for e in valid_errors[:5]:
        print(f"  {e[:200]}")
    print(f"malformed requests answered with their message: {bad_ok[0]} of {total - valid}")
    for e in bad_wrong[:5]:
        print(f"  unexpected: {e[:200]}")
    if latencies:
        print(f"latency of valid requests: p50 {1000 * statistics.median(latencies):.0f} ms, "
              f"p95 {1000 * q[18]:.0f} ms, max {1000 * max(latencies):.0f} ms")
    print(f"server RSS: after warm-up {warm:.0f} MB, at the end {end:.0f} MB, growth "
          f"{100 * (end / warm - 1):+.1f}%   target <= +10%")
    print(f"server threads: after warm-up {warm_threads}, at the end {end_threads}")


if __name__ == "__main__":
    main()
