"""Starting the server: ``zsdemo serve`` / ``python app.py`` / a Hugging Face Space.

    zsdemo serve [--model PRESET|SPEC] [--pretrained TAG|FILE] [--device auto|cpu|cuda]
                 [--host 127.0.0.1] [--port 7860] [--share] [--concurrency 2] [--queue-size 64]
                 [--allow-random-models] [--mcp]

Every flag is checked here, before anything loads: a value out of its range is argparse's usage
error (exit status 2) with a sentence naming the flag and its range, never a traceback and never
a server that starts and then fails every request.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import gradio as gr
from starlette.middleware import Middleware

from ..core.command import command_name
from ..core.errors import ModelLoadError, ZsdemoError
from ..core.files import read_head
from ..core.limits import LIMITS, LIMITS_INFO, check_environment
from ..core.memory import start_trimming
from ..engine.models import DEFAULT_PRESET, REGISTRY
from ..engine.weights import open_clip_arguments, register_tiny_config, resolve_spec
from . import links, mcp_tools, state, theme
from .page import CSS, PAGE_JS, STATE_SESSIONS, build_app

# The whole-number flags and their ranges (said the same in --help and in the refusal).
RANGES = {"port": (1, 65535), "concurrency": (1, 64), "queue_size": (1, 10_000), "max_models": (0, 16)}
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")      # never a cache, whatever the permissions say


def launch(page: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           concurrency: int = 2, queue_size: int = 64, mcp: bool = False, **kwargs: Any) -> tuple:
    # One model and one text cache serve everyone; the queue bounds how many requests run at once
    # (the model's lock serialises forward passes; decoding and plotting overlap) and how many wait.
    # mcp: the public endpoints also become MCP tools (Gradio's MCP server, /gradio_api/mcp/).
    page.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    start_trimming()
    read_whole_heads()
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(links.LongAddresses)]
    if mcp:
        app_kwargs["middleware"].append(Middleware(mcp_tools.BoundedBodies))
        app_kwargs["lifespan"] = _adapting_mcp(page, app_kwargs.get("lifespan"))
    return page.launch(server_name=host, server_port=port, share=share, max_file_size=LIMITS.upload_bytes,
                       state_session_capacity=STATE_SESSIONS, css=CSS, theme=theme.theme(), js=PAGE_JS,
                       show_error=False, mcp_server=mcp,
                       app_kwargs=app_kwargs, **kwargs)


HEAD_BYTES = 4 * links.MAX_ADDRESS     # a request head uvicorn reads whole, however the network cuts it


def read_whole_heads(limit: int = HEAD_BYTES) -> None:
    """Let uvicorn's h11 parser read a request head of up to ``limit`` bytes that arrives in pieces.

    h11 refuses (400, then closes the connection mid-send) a head still incomplete past 16 KiB,
    and a long address over a real network, or over loopback when the server reads quickly, does
    arrive in pieces: a 40 KB link then never reached ``links.LongAddresses`` and its page that
    says "too long", or did by the luck of timing. Gradio builds uvicorn's Config itself, without
    ``h11_max_incomplete_event_size``, so the default it falls back to is raised here instead."""
    from uvicorn.protocols.http import h11_impl

    if getattr(h11_impl, "DEFAULT_MAX_INCOMPLETE_EVENT_SIZE", limit) < limit:
        h11_impl.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = limit


def _adapting_mcp(page: gr.Blocks, then: Callable | None) -> Callable:
    """A lifespan that adapts Gradio's MCP server (``mcp_tools``) once it exists, before the app
    serves its first request."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if page.mcp_server_obj is not None:
            mcp_tools.adapt(page.mcp_server_obj)
        if then is None:
            yield
        else:
            async with then(app):
                yield
    return lifespan


def whole(flag: str) -> Callable[[str], int]:
    """argparse's type for a whole-number flag in its range (``RANGES``)."""
    low, high = RANGES[flag]

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high} (got {str(text)[:20]!r})")
        return value
    parse.__name__ = flag.replace("_", "-")
    return parse


def host(text: str) -> str:
    """An address or name this machine can listen on (resolved now, not when Gradio looks for a port)."""
    try:
        socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not an address or a name this machine can resolve "
                                         "(e.g. 127.0.0.1, 0.0.0.0 or localhost)") from None
    return text


def feature_cache(text: str) -> str | None:
    """'none', or a folder that is one (or can be made) and can be written, outside the system's."""
    if text.strip().lower() == "none":
        return None
    path = Path(text).expanduser()
    resolved = os.path.realpath(path)
    if any(resolved == f or resolved.startswith(f + "/") for f in SYSTEM_FOLDERS):
        raise argparse.ArgumentTypeError(f"{text[:120]!r} is in a system folder ({', '.join(SYSTEM_FOLDERS)}): "
                                         "give a folder of your own, or 'none'")
    try:
        if path.exists() and not stat.S_ISDIR(os.stat(path).st_mode):
            raise argparse.ArgumentTypeError(f"{text[:120]!r} is a file, not a folder: give a folder, or 'none'")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{text[:120]!r} cannot be used as a folder ({e.strerror or e}): give a "
                                         "folder this process can write, or 'none'") from None
    return str(path)


def check_model(model: str, pretrained: str | None) -> None:
    """What can be known without loading it: the architecture, tag, checkpoint file or hub id.
    Raises ModelLoadError when the model cannot be loaded at all."""
    register_tiny_config()
    spec = resolve_spec(model, pretrained)
    if spec.pretrained and os.path.exists(spec.pretrained):
        head = read_head(spec.pretrained, f"--pretrained {spec.pretrained!r}", 16, ModelLoadError)
        safetensors = len(head) > 8 and head[8:9] == b"{"
        if not (head.startswith(b"PK") or head.startswith(b"\x80") or safetensors):
            raise ModelLoadError(f"--pretrained {spec.pretrained!r} is not a checkpoint: neither safetensors nor a "
                                 "PyTorch checkpoint (.pt, .pth, .bin).")
    open_clip_arguments(spec)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parser() -> argparse.ArgumentParser:
    command = command_name()      # "python app.py" on a Space and in a checkout, else "zsdemo serve"
    p = argparse.ArgumentParser(prog=command if command.endswith(".py") else f"{command} serve",
                                description="zsdemo web app")
    p.add_argument("--model", default=os.environ.get("ZSDEMO_MODEL", DEFAULT_PRESET),
                   help="model preset or open_clip spec (default %(default)s)")
    p.add_argument("--pretrained", default=os.environ.get("ZSDEMO_PRETRAINED"),
                   help="pretrained tag or checkpoint file for an architecture name")
    p.add_argument("--device", default=os.environ.get("ZSDEMO_DEVICE", "auto"),
                   help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--host", type=host, default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=whole("port"), default=os.environ.get("GRADIO_SERVER_PORT", "7860"),
                   help="1 to 65535 (default %(default)s)")
    p.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    p.add_argument("--concurrency", type=whole("concurrency"), default=2,
                   help="requests worked on at once, 1 to 64 (default %(default)s)")
    p.add_argument("--queue-size", type=whole("queue_size"), default=64,
                   help="requests that may wait, 1 to 10,000; more are refused (default %(default)s)")
    p.add_argument("--feature-cache", type=feature_cache, default=str(state.DEFAULT_FEATURE_CACHE),
                   help="folder of the evaluation tab's image-feature cache ('none': keep none; "
                        "default %(default)s)")
    p.add_argument("--max-models", type=whole("max_models"), default=1,
                   help="models kept in memory besides the served one when visitors switch models, 0 to 16")
    p.add_argument("--no-warm-up", action="store_true",
                   help="do not load the model and compute the examples' and presets' text features at start")
    p.add_argument("--allow-random-models", action="store_true",
                   help="let visitors pick a bare open_clip architecture (random weights; off by default)")
    p.add_argument("--mcp", action="store_true", default=_env_flag("ZSDEMO_MCP"),
                   help="also serve /classify, /evaluate, /wordnet and /options as MCP tools at "
                        "/gradio_api/mcp/ (env ZSDEMO_MCP=1)")
    for info in LIMITS_INFO:
        p.add_argument(info.flag, default=None, metavar="N",
                       help=f"limit: {info.what} (default {getattr(LIMITS, info.name)}; env {info.env})")
    return p


def main(argv: list[str] | None = None) -> None:
    flags = parser()
    args = flags.parse_args(argv)
    try:
        check_environment()
        for info in LIMITS_INFO:
            value = getattr(args, "max_" + info.name)
            if value is not None:
                LIMITS.set(info.name, value)
    except ZsdemoError as e:
        flags.error(e.for_cli())   # before anything starts: one line, exit status 2
    logging.basicConfig(level=logging.INFO)
    try:
        check_model(args.model, args.pretrained)
    except ZsdemoError as e:
        if args.no_warm_up:      # nothing would ever be served
            flags.error(e.for_cli())
        # The page starts all the same and its banner says why nothing can be classified.
        print(f"zsdemo serve: the model cannot be loaded: {e.for_cli()}", file=sys.stderr)
    REGISTRY.max_models = args.max_models
    try:
        page = build_app(args.model, args.pretrained, args.device, args.feature_cache, args.allow_random_models,
                         warm_up=not args.no_warm_up)
    except ZsdemoError as e:
        flags.error(e.for_cli())
    launch(page, args.host, args.port, args.share, args.concurrency, args.queue_size, mcp=args.mcp)


if __name__ == "__main__":
    main()
