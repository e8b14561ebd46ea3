"""Command line: ``python -m zsdemo classify|models|strategies``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from . import classnames as C
from .errors import ZsdemoError
from .models import DEFAULT_PRESET, PRESETS, get_model
from .pipeline import DEFAULT_TOP_K, classify_request, prepare_request
from .results import ClassificationResult
from .strategies import STRATEGIES

EXIT_BAD_INPUT = 2
EXIT_IMAGE_FAILED = 1


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_PRESET,
                   help=f"preset ({', '.join(PRESETS)}), an open_clip architecture, hf-hub:ORG/REPO "
                        f"or local-dir:PATH (default {DEFAULT_PRESET})")
    p.add_argument("--pretrained", default=None,
                   help="pretrained tag or checkpoint file for an architecture name")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--precision", default=None, choices=("fp32", "amp"),
                   help="fp32, or amp (fp16 autocast; the default on CUDA)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zsdemo",
                                     description="Zero-shot image classification with CLIP-style models.")
    parser.add_argument("--verbose", action="store_true", help="show library log messages")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("classify", help="classify images against class names")
    c.add_argument("images", nargs="+", help="image files")
    group = c.add_mutually_exclusive_group(required=True)
    group.add_argument("--classes", help="class names, separated by commas or new lines")
    group.add_argument("--classes-file", help="a text file of class names, one per line")
    group.add_argument("--preset", choices=sorted(C.PRESETS), help="a class-name preset")
    c.add_argument("--strategies", default="name,photo,clip80",
                   help=f"comma-separated ids: {', '.join(STRATEGIES)}, or all (default name,photo,clip80)")
    c.add_argument("--templates", action="append", default=None, metavar="T",
                   help="a custom template with one {} (repeat the flag for several)")
    c.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    c.add_argument("--json", action="store_true", help="print the full result as JSON")
    _add_model_args(c)

    sub.add_parser("models", help="list the model presets")
    sub.add_parser("strategies", help="list the strategies")
    return parser


def format_table(result: ClassificationResult) -> str:
    lines = [f"model: {result.model['label']} on {result.model['device']}"
             + ("  [RANDOM WEIGHTS: predictions are meaningless]" if result.model["random_weights"] else "")]
    lines += [f"warning: {w}" for w in result.warnings]
    width = max(len(s) for s in result.strategies)
    for im in result.images:
        lines.append("")
        if im.error:
            lines.append(f"{im.source}: ERROR {im.error}")
            continue
        lines.append(f"{im.source} ({im.width}x{im.height})")
        lines += [f"  note: {w}" for w in im.warnings]
        for sid, res in im.strategies.items():
            top = "  ".join(f"{p.class_name} {p.prob:.3f}" for p in res.top_k)
            lines.append(f"  {sid:<{width}}  {top}")
    return "\n".join(lines)


def _read_classes(args: argparse.Namespace) -> str | tuple[str, ...]:
    if args.preset:
        return C.preset_classnames(args.preset)
    if args.classes_file:
        try:
            with open(args.classes_file, encoding="utf-8", errors="strict") as f:
                return f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ZsdemoError(f"Cannot read class file {args.classes_file!r}: {e}") from None
    return args.classes


def run_classify(args: argparse.Namespace) -> int:
    # Validate the cheap input first: a typo should not wait for a model to load.
    request = prepare_request(_read_classes(args), args.strategies, args.templates, args.top_k)
    loaded = get_model(args.model, args.pretrained, args.device, args.precision)
    result = classify_request(loaded, args.images, request)
    print(result.to_json() if args.json else format_table(result))
    failed = [im for im in result.images if im.error]
    for im in failed:
        print(f"error: {im.error}", file=sys.stderr)
    return EXIT_IMAGE_FAILED if failed else 0


def run_models() -> int:
    for p in PRESETS.values():
        weights = f"{p.arch} / {p.pretrained}" if p.pretrained else f"{p.arch} / random weights"
        default = "  (default)" if p.id == DEFAULT_PRESET else ""
        print(f"{p.id:<12} {p.label:<40} {weights:<36} {p.note}{default}")
    print("\nAlso accepted: any open_clip architecture with --pretrained TAG|FILE, hf-hub:ORG/REPO, local-dir:PATH.")
    return 0


def run_strategies() -> int:
    for s in STRATEGIES.values():
        print(f"{s.id:<8} {s.label:<18} {s.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        # Libraries log warnings (e.g. "no pretrained weights") that would clutter the output;
        # our own messages say what matters.
        logging.getLogger().addHandler(logging.NullHandler())
    try:
        if args.command == "classify":
            return run_classify(args)
        if args.command == "models":
            return run_models()
        return run_strategies()
    except ZsdemoError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
