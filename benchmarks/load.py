"""Load test: many concurrent gradio_client users mixing valid, malformed and hostile requests.

The app is started as its own process on loopback (``python app.py``, default queue and
concurrency). ``--clients`` threads, each with its own gradio_client, send ``--requests``
``/classify`` requests one after the other; every ``--bad-every``-th request is malformed or
hostile, rotating through: no class names, an unknown strategy, a non-image file, a template
without ``{}``, too many TPT views, and what an attacker sends (strings naming a server photo,
``/etc/passwd``, ``/dev/zero`` and a FIFO; a bare architecture that would build random weights;
wrong types; 10,000 classes x CLIP-80; 30,000 names to ``/wordnet``; descriptors nested 100,000
levels deep; 100,001 descriptors; a shipped photo named as a support set or an evaluation zip; a
zip of 10,000 tiny images; as raw HTTP, a file record never uploaded and too few arguments;
and, issue 34, what a shared link and the page's own events are sent: hostile links and a 70,000
character address opened as pages, a forged result sent to the page's example event, occlusion
grids that are no number, a gallery that is no list of files). The whole run is bounded in
count (clients x requests) and in time (``--timeout``; a request that does not finish in time
counts as an error).

Then the fairness check: one 10,000-class request (name + single template: 20,000 prompts, new
names so that no cache helps) and, two seconds into it, a small request from another client;
the small request's latency is the figure (target 15 s).

After the run: every hostile ``serve`` flag (``--port -1``, ``--concurrency 0``, ``--feature-cache
/etc/passwd``, ...) as its own process (exit status 2 with its sentence, no traceback), and, when
Chromium and playwright are there, the hostile links opened in Chromium (elements created from a
visitor's text, and requests to another host: target 0 each).

Printed: errors on valid requests (target 0), malformed requests answered with their message
(target: all), generic messages ("Something went wrong", or an empty error) and tracebacks
(target: 0 each), p50/p95/max latency of valid requests, the server's RSS after a concurrent
warm-up, its peak (sampled every 0.1 s) and at the end (target: growth at most 10%), and the
fairness figures.

    python benchmarks/load.py [--model tiny-random|ViT-B-32] [--clients 30] [--requests 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
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


TINY_PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS"
            b"\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00"
            b"\x00IEND\xaeB`\x82")


def raw_call(url: str, endpoint: str, data: list, timeout: float) -> str:
    """One call as a script without gradio_client makes it: the event stream's text."""
    import httpx

    base = url.rstrip("/") + "/gradio_api"
    event = httpx.post(f"{base}/call/{endpoint}", json={"data": data}, timeout=timeout)
    return httpx.get(f"{base}/call/{endpoint}/{event.json()['event_id']}", timeout=timeout).text


def malformed_cases(junk: Path, hostile: dict[str, str], handle_file) -> list[tuple[tuple, dict, str, str]]:
    """Every kind of malformed request: (args, kwargs, a fragment of the expected message, endpoint)."""
    image = [handle_file(str(IMAGES[0]))]
    not_sent = "not uploaded with this request"
    cases = [
        ((image, " , "), {}, "No class names", "/classify"),
        (([hostile["photo"]], CLASSES), {}, not_sent, "/classify"),
        ((image, CLASSES), {"strategies": "name,nonsense"}, "Unknown strategy", "/classify"),
        ((["/etc/passwd"], CLASSES), {}, not_sent, "/classify"),
        (([handle_file(str(junk))], CLASSES), {}, "not an image", "/classify"),
        ((["/dev/zero"], CLASSES), {}, not_sent, "/classify"),
        ((image, CLASSES), {"strategies": "custom", "templates": "a photo"}, "placeholder", "/classify"),
        (([hostile["fifo"]], CLASSES), {}, not_sent, "/classify"),
        ((image, CLASSES), {"strategies": "tpt", "tpt_views": 100_000}, "TPT views", "/classify"),
        ((image, CLASSES), {"model": "ViT-L-14"}, "no pretrained tag", "/classify"),
        ((image, 5), {}, "classes must be text", "/classify"),
        ((image, CLASSES), {"top_k": "5"}, "top-k must be a whole number", "/classify"),
        ((image, hostile["classes"]), {"strategies": "clip80"}, "text prompts; at most", "/classify"),
        (("/etc/passwd",), {}, not_sent, "/evaluate"),
        ((hostile["names"],), {}, "at most", "/wordnet"),
        # issue 26: nested JSON, too many descriptors, a shipped photo where a zip belongs, a zip of
        # more images than can be evaluated, and Gradio's own refusals as a raw caller meets them
        ((image, CLASSES), {"strategies": "dclip", "descriptors": hostile["nested"]}, "nests too deeply", "/classify"),
        ((image, CLASSES), {"strategies": "dclip", "descriptors": hostile["descriptors"]},
         "100,001 descriptors given", "/classify"),
        ((image, CLASSES), {"strategies": "tip", "support": str(IMAGES[0])}, "support set was not uploaded",
         "/classify"),
        ((str(IMAGES[0]),), {}, "zip was not uploaded", "/evaluate"),
        ((handle_file(hostile["many"]),), {"views": "flip"}, "images found; at most", "/evaluate"),
        (([{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}], CLASSES, "name", *[None] * 26), {},
         "was not uploaded with it", "raw:classify"),
        (([], "cat"), {}, "arguments and 2 were sent", "raw:classify"),
        # issue 34: links, the page's own events and its state, as a hostile visitor sends them
        (("/?strategies=%3Cimg%20src%3D//other.host/t%3E&%3Ca%20href%3D//other.host/p%3ELog%20in%3C/a%3E=1",), {},
         "200", "get:"),
        (("/?classes=" + "a" * 70_000,), {}, "303", "get:"),
        (("/" + "a" * 70_000,), {}, "414", "get:"),
        (({"result": {"classes": [f"c{i}" for i in range(100_000)], "images": []}, "paths": []},), {},
         "Only this page's own examples", "page:shown"),
        ((None, None, "top-1", "abc"), {}, "send a number in its range", "page:ui_occlusion"),
        ((None, None, "top-1", None), {}, "send a number in its range", "page:ui_occlusion"),
        (("notalist",), {}, "does not have the form its input takes", "page:check_upload"),
        ((None, None), {}, "Nothing to download yet", "page:prepare"),
    ]
    return cases


def page_call(url: str, endpoint: str, data: list, timeout: float) -> str:
    """A page's own event (``page:NAME``) or a GET of a path (``get:``), as text to look into."""

    if endpoint == "get:":          # http.client: httpx itself refuses an address over 64 KB
        import http.client
        from urllib.parse import urlparse

        where = urlparse(url)
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
        try:
            connection.request("GET", data[0])
            response = connection.getresponse()
            return f"{response.status} {response.read()[:2000].decode(errors='replace')}"
        finally:
            connection.close()
    sys.path.insert(0, str(ROOT / "tests"))
    import page_events

    return json.dumps(page_events.call(url, endpoint[5:], data, timeout=timeout))


HOSTILE_FLAGS = [["--port", "-1"], ["--port", "99999"], ["--mcp", "--port", "-3"], ["--concurrency", "0"],
                 ["--concurrency", "-5"], ["--queue-size", "0"], ["--queue-size", "-1"], ["--max-models", "-1"],
                 ["--feature-cache", "/etc/passwd"], ["--feature-cache", "/dev/null"],
                 ["--feature-cache", "/proc/self"],
                 ["--host", "no-such-host.invalid"],
                 ["--model", "tiny-random", "--pretrained", "/etc/passwd", "--no-warm-up"]]


def flag_cases() -> tuple[int, list[str]]:
    """Each hostile flag as its own ``app.py``: (refused with exit 2 and a sentence, what went otherwise)."""
    ok, wrong = 0, []
    for flags in HOSTILE_FLAGS:
        run = subprocess.run([sys.executable, str(ROOT / "app.py"), *flags], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        said = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ""
        if run.returncode == 2 and "Traceback" not in run.stderr and "error: " in said:
            ok += 1
        else:
            wrong.append(f"{' '.join(flags)}: exit {run.returncode}: {said[:160]}")
    return ok, wrong


def links_in_chromium(url: str) -> tuple[int, int, int] | None:
    """The hostile links opened in Chromium: (pages opened, elements made from a visitor's text,
    requests to another host); None without Chromium or playwright."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from playwright.sync_api import sync_playwright

        from browser_support import ARGS, BROWSER, CREATED_JS, Listener, payloads
    except ImportError:
        return None
    if not os.path.exists(BROWSER):
        return None
    from urllib.parse import quote

    listener = Listener()
    strays: list[str] = []
    created = opened = 0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=BROWSER, args=ARGS)
            tab = browser.new_page()
            origin = url.rstrip("/")
            tab.on("request", lambda r: strays.append(r.url) if not r.url.startswith((origin, "data:", "blob:"))
                   else None)
            for text in payloads(listener.host):
                for query in (f"strategies={quote(text)}", f"{quote(text)}=1", f"model={quote(text)}",
                              f"classes={quote(text)}"):
                    tab.goto(f"{origin}/?{query}")
                    tab.wait_for_timeout(1200)
                    created += len(tab.evaluate(CREATED_JS))
                    opened += 1
            browser.close()
    finally:
        listener.close()
    return opened, created, len(strays) + len(listener.hits)


def malformed(k: int, junk: Path, hostile: dict[str, str], handle_file) -> tuple[tuple, dict, str, str]:
    """The k-th malformed request."""
    cases = malformed_cases(junk, hostile, handle_file)
    return cases[k % len(cases)]


class MemorySampler(threading.Thread):
    """The server's RSS every 0.1 s, for its peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, status(self.pid, "VmRSS") / 1024)
            except (OSError, RuntimeError):
                return
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", help="tiny-random or an architecture (random weights)")
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--requests", type=int, default=5, help="requests per client")
    parser.add_argument("--big-classes", type=int, default=10_000, help="classes of the fairness check's big request")
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
    scratch = Path(tempfile.mkdtemp())
    junk = scratch / "notes.jpg"
    junk.write_text("not an image")
    os.mkfifo(scratch / "pipe.png")
    private = scratch / "private.png"            # a photo on the server's disk that nobody uploaded
    private.write_bytes(IMAGES[1].read_bytes())
    many = scratch / "many.zip"                  # 10,000 tiny images: more than an evaluation takes
    with zipfile.ZipFile(many, "w") as z:
        for i in range(10_000):
            z.writestr(f"c{i % 2}/{i}.png", TINY_PNG)
    hostile = {"photo": str(private), "fifo": str(scratch / "pipe.png"),
               "classes": "\n".join(f"hostile class {i}" for i in range(10_000)),
               "names": "\n".join(f"name {i}" for i in range(30_000)),
               "nested": '{"cat": ' + "[" * 100_000 + "]" * 100_000 + "}",
               "descriptors": json.dumps({"cat": [f"d{i}" for i in range(100_001)]}), "many": str(many)}
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
        generic, tracebacks = [0], [0]

        def user(client_id: int, count: int, record: bool) -> None:
            client = Client(url, verbose=False)
            for r in range(count):
                remaining = deadline - time.monotonic()
                n = client_id * count + r
                bad = args.bad_every > 0 and n % args.bad_every == args.bad_every - 1
                if bad:
                    a, kw, expect, endpoint = malformed(n // args.bad_every, junk, hostile, handle_file)
                else:
                    images = [handle_file(str(IMAGES[(n + j) % len(IMAGES)])) for j in range(1 + n % 2)]
                    a, kw, expect, endpoint = (images, CLASSES), {"strategies": "name,photo,clip80"}, "", "/classify"
                start = time.perf_counter()
                try:
                    if remaining <= 0:
                        raise TimeoutError("the run's time limit passed before this request")
                    if endpoint.startswith("raw:"):
                        raise RuntimeError(raw_call(url, endpoint[4:], list(a), remaining))
                    if endpoint.startswith(("page:", "get:")):
                        raise RuntimeError(page_call(url, endpoint, list(a), remaining))
                    out = client.submit(*a, api_name=endpoint, **kw).result(timeout=remaining)
                    error = "no error for a malformed request" if bad else None
                    if not bad and any(im["error"] for im in out["images"]):
                        error = "an image failed: " + next(im["error"] for im in out["images"] if im["error"])
                    if bad and expect == "not an image" and out["images"][0]["error"]:
                        error = None if expect in out["images"][0]["error"] else out["images"][0]["error"]
                except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the run
                    error = f"{type(e).__name__}: {e}"
                    with lock:
                        generic[0] += "Something went wrong" in str(e) or '"error": null' in str(e)
                        tracebacks[0] += "Traceback" in str(e)
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
        cold = status(server.pid, "VmRSS") / 1024
        # ... and every kind of malformed request once: the first 1.7 MB of descriptors or zip of
        # 10,000 entries raises the allocator's high-water mark once; growth measures what repeats.
        first_use = Client(url, verbose=False)
        for a, kw, _, endpoint in malformed_cases(junk, hostile, handle_file):
            try:
                if endpoint.startswith("raw:"):
                    raw_call(url, endpoint[4:], list(a), 120)
                elif endpoint.startswith(("page:", "get:")):
                    page_call(url, endpoint, list(a), 120)
                else:
                    first_use.predict(*a, api_name=endpoint, **kw)
            except Exception:  # noqa: BLE001 - each is refused; the run above counts how
                pass
        warm, warm_threads = status(server.pid, "VmRSS") / 1024, status(server.pid, "Threads")
        sampler = MemorySampler(server.pid)
        sampler.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda c: user(c, args.requests, True), range(args.clients)))
        wall = time.perf_counter() - start
        end, end_threads = status(server.pid, "VmRSS") / 1024, status(server.pid, "Threads")
        fair = fairness(url, args.big_classes, handle_file, Client)
        sampler.running = False
        chromium = links_in_chromium(url)
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
    print(f"malformed requests answered with their message: {bad_ok[0]} of {total - valid}; "
          f"generic messages or empty errors: {generic[0]}; tracebacks: {tracebacks[0]}")
    for e in bad_wrong[:5]:
        print(f"  unexpected: {e[:200]}")
    if latencies:
        print(f"latency of valid requests: p50 {1000 * statistics.median(latencies):.0f} ms, "
              f"p95 {1000 * q[18]:.0f} ms, max {1000 * max(latencies):.0f} ms")
    print(f"server RSS: after the valid warm-up {cold:.0f} MB (+{(warm / cold - 1) * 100:.1f}% for the first of "
          f"each malformed kind); after warm-up {warm:.0f} MB, peak {sampler.peak:.0f} MB, at the end {end:.0f} MB, growth "
          f"{100 * (end / warm - 1):+.1f}%   target <= +10%")
    print(f"fairness: a small request sent {fair['delay']:.0f} s into a {args.big_classes:,}-class request "
          f"({fair['prompts']:,} prompts, {fair['big']:.1f} s) was answered in {fair['small']:.2f} s "
          f"(alone: {fair['alone']:.2f} s)   target <= 15 s")
    print(f"server threads: after warm-up {warm_threads}, at the end {end_threads}")
    flags_ok, flags_wrong = flag_cases()
    print(f"hostile serve flags refused at start (exit 2, one sentence, no traceback): {flags_ok} of "
          f"{len(HOSTILE_FLAGS)}")
    for e in flags_wrong:
        print(f"  unexpected: {e}")
    if chromium is None:
        print("hostile links in Chromium: skipped (no Chromium or playwright)")
    else:
        print(f"hostile links in Chromium: {chromium[0]} pages, elements made from a visitor's text: {chromium[1]}, "
              f"requests to another host: {chromium[2]}   target 0 and 0")


def fairness(url: str, classes: int, handle_file, Client) -> dict[str, float]:
    """A small request's latency while a request of ``classes`` new class names runs."""
    image = [handle_file(str(IMAGES[0]))]
    small_client, big_client = Client(url, verbose=False), Client(url, verbose=False)
    start = time.perf_counter()
    small_client.predict(image, CLASSES, strategies="name", api_name="/classify")
    alone = time.perf_counter() - start
    tag = format(time.time_ns() % 16**5, "x")
    names = "\n".join(f"object {tag} {i}" for i in range(classes))     # new names: nothing cached
    big_start = time.perf_counter()
    job = big_client.submit(image, names, strategies="name,photo", api_name="/classify")
    delay = 2.0
    time.sleep(delay)
    start = time.perf_counter()
    small_client.predict(image, CLASSES, strategies="name", api_name="/classify")
    small = time.perf_counter() - start
    job.result(timeout=1800)
    return {"alone": alone, "small": small, "delay": delay, "big": time.perf_counter() - big_start,
            "prompts": 2 * classes}


if __name__ == "__main__":
    main()
