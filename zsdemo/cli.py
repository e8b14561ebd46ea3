"""Command line: ``zsdemo classify|evaluate|wordnet|setup-wordnet|models|strategies``.

Only plain-data modules are imported up front: ``--help``, a typo and ``zsdemo models`` answer
at once, and torch, open_clip and WordNet are loaded by the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .prompts.classnames import PRESETS as CLASS_PRESETS
from .prompts.classnames import parse_classnames, preset_classnames
from .core.constants import EVAL_BATCH_SIZE
from .data.datasets import DATASETS, open_dataset, parse_dataset
from .core.command import command_name
from .core.errors import InputError, ZsdemoError
from .core.files import is_regular_file, read_text
from .core.limits import LIMITS, check_environment
from .run import inputs as request_inputs
from .engine.presets import DEFAULT_PRESET
from .engine.presets import PRESETS as MODEL_PRESETS

if TYPE_CHECKING:
    from .run.evaluation import EvaluationReport
    from .engine.results import ClassificationResult
    from .wordnet.senses import ClassSense

EXIT_BAD_INPUT = 2
EXIT_IMAGE_FAILED = 1
PROGRESS_EVERY_S = 5.0             # without a terminal, a progress line at most this often
ARENA_SHOWN = 10                   # strategy pairs printed (the lowest p-values first)
PROGRESS_AFTER_S = 1.0             # work shorter than this prints no progress at all


def progress_printer(quiet: bool, stream=None) -> Callable[[float, str], None] | None:
    """A progress callback that writes to stderr once the work has run PROGRESS_AFTER_S: one line
    redrawn in a terminal, else a line per stage and at most one every PROGRESS_EVERY_S (a log
    stays readable)."""
    if quiet:
        return None
    stream = stream or sys.stderr
    tty = stream.isatty()
    began = time.monotonic()
    last = {"stage": None, "at": 0.0}

    def report(fraction: float, message: str) -> None:
        if time.monotonic() - began < PROGRESS_AFTER_S:
            return
        line = f"{100 * fraction:3.0f}% {message}"
        if tty:
            stream.write("\r" + line[:118].ljust(118) + ("\n" if fraction >= 1.0 else ""))
            stream.flush()
            return
        stage, now = message.split(":")[0].split(" · ")[0], time.monotonic()
        if stage != last["stage"] or now - last["at"] >= PROGRESS_EVERY_S or fraction >= 1.0:
            print(line, file=stream, flush=True)
            last.update(stage=stage, at=now)
    return report


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_PRESET,
                   help=f"preset ({', '.join(MODEL_PRESETS)}), an open_clip architecture, hf-hub:ORG/REPO "
                        f"or local-dir:PATH (default {DEFAULT_PRESET})")
    p.add_argument("--pretrained", default=None,
                   help="pretrained tag or checkpoint file for an architecture name")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--precision", default=None, choices=("fp32", "amp"),
                   help="fp32, or amp (fp16 autocast; the default on CUDA)")


def _add_request_args(p: argparse.ArgumentParser, endpoint: str) -> None:
    """The request's own inputs this command takes, from their declarations (``run/inputs.py``)."""
    for item in request_inputs.inputs("cli", endpoint):
        words = item.help_for(endpoint, "cli")
        if item.kind == "flag":
            p.add_argument(item.flag, dest=item.name, action="store_true", help=words)
        elif item.cli_repeat:
            p.add_argument(item.flag, dest=item.name, action="append", default=None, metavar=item.metavar, help=words)
        else:
            p.add_argument(item.flag, dest=item.name, default=item.default_for("cli", endpoint),
                           type=int if item.kind == "whole" else str, metavar=item.metavar, help=words)


def _add_option_args(p: argparse.ArgumentParser, on_map: bool = False) -> None:
    """Every method's own options, as each declares them (``strategies/options.py``), a group each
    (``on_map``: only those of methods the embedding map draws). Not in every parser: the
    declarations live with the methods, which need PyTorch."""
    from .strategies import groups

    for group in groups().values():
        if on_map and not any(s.on_map for s in group.strategies):
            continue
        flags = p.add_argument_group(f"{group.label} ({', '.join(s.id for s in group.strategies)})")
        for _, opt, default in group.fields("cli"):
            helped = opt.help if default is None or opt.shown is not None else f"{opt.help} (default {default:g})" \
                if isinstance(default, float) else f"{opt.help} (default {default})"
            if opt.kind == "flag":
                flags.add_argument(opt.cli_flag, dest=opt.name, action="store_true", default=None, help=helped)
                continue
            kind = {"whole": int, "number": float}.get(opt.kind) if opt.parse is None else None
            flags.add_argument(opt.cli_flag, dest=opt.name, default=None, type=kind or str, metavar=opt.metavar,
                               choices=[v for _, v in opt.choices] if opt.kind == "choice" else None,
                               help=helped)


def _option_values(args: argparse.Namespace) -> dict[str, object]:
    """The options given on the command line, by their public names (the others keep defaults)."""
    from .strategies import named_options

    return {name: getattr(args, name) for name in named_options("cli") if getattr(args, name, None) is not None}


def _request_values(args: argparse.Namespace, endpoint: str, classnames: Sequence[str]) -> dict[str, object]:
    """The request's inputs as given on the command line, by name, with the methods' options: a
    file flag read (descriptors), a support set opened for the classes, a SuS pool opened."""
    from .data.pool import open_pool
    from .data.support import MAX_SUPPORT, open_support
    from .prompts.descriptors import MAX_CHARS      # a file flag's text: the descriptors' limit, read with room

    values: dict[str, object] = {}
    for item in request_inputs.inputs("cli", endpoint):
        value = getattr(args, item.name)
        if value is not None and item.cli_file:
            value = read_text(value, f"Cannot read the {item.label.lower()} file {value!r}", MAX_CHARS * 4)
        elif value is not None and item.kind == "file":
            value = open_support(value, classnames)
        elif value is not None and item.kind == "pool":
            value = open_pool(value, max_images=MAX_SUPPORT)
        values[item.name] = value
    return {**values, **_option_values(args)}


def build_parser(with_options: bool = False) -> argparse.ArgumentParser:
    """The command line; ``with_options`` adds the methods' own flags to classify and evaluate
    (that imports the methods, so ``main`` asks for it only when one of those commands runs)."""
    parser = argparse.ArgumentParser(prog=command_name(),
                                     description="Zero-shot image classification with CLIP-style models.")
    parser.add_argument("--verbose", action="store_true", help="show library log messages")
    sub = parser.add_subparsers(dest="command", required=True)

    _classify_parser(sub.add_parser("classify", help="classify images against class names"), with_options)
    _evaluate_parser(sub.add_parser(
        "evaluate", help="accuracy and selective prediction on a labelled image folder",
        description="Evaluate strategies on labelled images: an ImageFolder tree (one subfolder per class, named by "
                    "the class or by a WordNet id such as n01440764), a folder with labels.csv, a CSV of path,label, "
                    "or a zip of either."), with_options)

    _map_parser(sub.add_parser(
        "map", help="the embedding map: images, class names, prompts and ensembles on two principal axes",
        description="Project the images, each class's name, every prompt of the selected template strategies, "
                    "their ensembles and the hierarchy's WordNet parents and children on their top two principal "
                    "axes (PCA). Prints each image's nearest ensemble and prompt; --json prints every point, "
                    "--out draws the map (PNG or SVG)."), with_options)

    w = sub.add_parser("wordnet", help="show how class names map into WordNet")
    w.add_argument("names", nargs="+", help="class names; each is read in the context of the others")
    w.add_argument(request_inputs.find("senses", "cli", "classify").flag, dest="sense", action="append", default=None,
                   metavar="CLASS=SENSE", help="force the sense of a class, e.g. crane=crane.n.04 (repeatable)")
    w.add_argument("--json", action="store_true", help="print the result as JSON")

    sub.add_parser("setup-wordnet", help="install WordNet for NLTK (from the system's packages or by download)")
    sub.add_parser("models", help="list the model presets")
    sub.add_parser("strategies", help="list the strategies")
    # The page's own parser reads these flags (``zsdemo serve --help``), so that `zsdemo serve`
    # and the Space's app.py take the same ones.
    sub.add_parser("serve", help="start the web page (the same flags as app.py; zsdemo serve --help)",
                   add_help=False, prefix_chars="\0").add_argument("flags", nargs=argparse.REMAINDER)
    return parser


def _add_class_args(p: argparse.ArgumentParser) -> None:
    """The class names, one way of three (classify and map: evaluate's are candidates)."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--classes", help="class names, separated by commas or new lines")
    group.add_argument("--classes-file", help="a text file of class names, one per line")
    group.add_argument("--preset", choices=sorted(CLASS_PRESETS), help="a class-name preset")


def _classify_parser(c: argparse.ArgumentParser, with_options: bool) -> None:
    c.add_argument("images", nargs="+", help="image files")
    _add_class_args(c)
    _add_request_args(c, "classify")
    c.add_argument("--cache", default=None,
                   help="cache folder for the sparse WordNet's node scores, per model "
                        "(default $ZSDEMO_FEATURE_CACHE or ~/.cache/zsdemo/features)")
    c.add_argument("--no-cache", action="store_true", help="keep no node scores on disk")
    c.add_argument("--json", action="store_true", help="print the full result as JSON")
    c.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    _add_model_args(c)
    if with_options:
        _add_option_args(c)


def _map_parser(m: argparse.ArgumentParser, with_options: bool) -> None:
    m.add_argument("images", nargs="*", help="image files (none: a map of the texts alone)")
    _add_class_args(m)
    _add_request_args(m, "map")
    m.add_argument("--out", default=None, metavar="FILE.png|FILE.svg", help="draw the map into this file")
    m.add_argument("--cache", default=None, help="cache folder for the sparse WordNet's node scores (as classify)")
    m.add_argument("--no-cache", action="store_true", help="keep no node scores on disk")
    m.add_argument("--json", action="store_true", help="print every point as JSON (schema zsdemo.embedding_map/1)")
    m.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    _add_model_args(m)
    if with_options:
        _add_option_args(m, on_map=True)


def _evaluate_parser(e: argparse.ArgumentParser, with_options: bool) -> None:
    e.add_argument("data", help="ImageFolder folder, folder with labels.csv, CSV file, or .zip")
    e.add_argument("--dataset", default=None, choices=list(DATASETS),
                   help="read DATA as one of Ge et al.'s datasets (its label mapping, its classes; R and A "
                        "scored 200-way) and compare the hierarchy's accuracy with the paper's")
    e.add_argument("--out", default="evaluation", help="folder for report.json, the CSV tables and "
                   "coverage.png (default ./evaluation)")
    e.add_argument("--class-map", default=None, metavar="FILE",
                   help="label -> class name mapping: JSON object or lines 'label,class name'")
    candidates = e.add_mutually_exclusive_group()
    candidates.add_argument("--classes", help="candidate classes (default: the labels found)")
    candidates.add_argument("--classes-file", help="a text file of candidate classes, one per line")
    candidates.add_argument("--preset", choices=sorted(CLASS_PRESETS), help="candidate classes from a preset")
    _add_request_args(e, "evaluate")
    e.add_argument("--shots", default=None, metavar="K,K,...",
                   help="the CLIP paper's curve: fit the linear probe, GDA and Tip-Adapter (and CoOp when selected) "
                        "on K examples per class of --support, for each K (e.g. 1,2,4,8,16), beside the zero-shot "
                        "strategies selected; writes shots_curve.csv and shots_curve.png")
    e.add_argument("--seeds", default=None, metavar="R",
                   help="draws of the examples per K, the curve's spread (default 3, at most 10)")
    e.add_argument("--batch-size", type=int, default=EVAL_BATCH_SIZE,
                   help="images per encoder step, each with its views (default %(default)s)")
    e.add_argument("--cache", default=None,
                   help="image-feature cache folder, keyed by file content and model; a second run skips "
                        "the encoder; also keeps the sparse WordNet's node scores "
                        "(default $ZSDEMO_FEATURE_CACHE or ~/.cache/zsdemo/features)")
    e.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    e.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    e.add_argument("--json", action="store_true", help="print the full report as JSON")
    _add_model_args(e)
    if with_options:
        _add_option_args(e)


def format_table(result: ClassificationResult) -> str:
    from .strategies import STRATEGIES

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
            note = STRATEGIES[sid].note(res)
            lines.append(f"  {sid:<{width}}  {top}" + (f"  [{note}]" if note else ""))
        check = im.analyses.get("consistency")
        if check:
            lines.append(
                f"  consistency: {check.verdict.upper()}  S_T={check.s_t:.2f}  S_B={check.s_b:.2f}  "
                f"O_T={'yes' if check.o_t else 'no'}  O_B={'yes' if check.o_b else 'no'}"
            )
            lines.append("    prompt groups: " + ", ".join(f"{g}={c}" for g, c in check.groups.items()))
            lines.append("    views: " + ", ".join(f"{v}={c}" for v, c in check.views.items()))
    return "\n".join(lines)


def _read_classes(args: argparse.Namespace) -> str | tuple[str, ...]:
    if args.preset:
        return preset_classnames(args.preset)
    if args.classes_file:
        return read_text(args.classes_file, f"Cannot read class file {args.classes_file!r}", LIMITS.upload_bytes)
    return args.classes


def run_classify(args: argparse.Namespace) -> int:
    # Validate the cheap input first: a typo should not wait for a model to load.
    from .engine.feature_store import DEFAULT_DIR
    from .engine.models import get_model
    from .run.pipeline import classify_request, prepare_request
    from .wordnet.sparse import CACHE

    raw = _read_classes(args)
    inputs = _request_values(args, "classify", parse_classnames(raw).names)
    try:
        request = prepare_request(raw, **inputs)
        CACHE.attach(None if args.no_cache else args.cache or DEFAULT_DIR)
        loaded = get_model(args.model, args.pretrained, args.device, args.precision)
        result = classify_request(loaded, args.images, request, progress=progress_printer(args.quiet))
    finally:
        for opened in (inputs["support"], inputs["sus_pool"]):
            if opened is not None:
                opened.close()
    print(result.to_json() if args.json else format_table(result))
    failed = [im for im in result.images if im.error]
    for im in failed:
        print(f"error: {im.error}", file=sys.stderr)
    return EXIT_IMAGE_FAILED if failed else 0


def run_map(args: argparse.Namespace) -> int:
    from .engine.feature_store import DEFAULT_DIR
    from .engine.models import get_model
    from .run import embedding_map
    from .wordnet.sparse import CACHE

    raw = _read_classes(args)
    values = _request_values(args, "map", parse_classnames(raw).names)
    separate = bool(values.pop("separate_modalities"))
    if args.out is not None:
        embedding_map.check_out(args.out)
    request, skipped = embedding_map.prepare_map(raw, where="cli", **values)
    CACHE.attach(None if args.no_cache else args.cache or DEFAULT_DIR)
    loaded = get_model(args.model, args.pretrained, args.device, args.precision)
    found = embedding_map.embedding_map(loaded, args.images, request, separate_modalities=separate,
                                        progress=progress_printer(args.quiet), skipped=skipped)
    if args.out is not None:
        embedding_map.write_figure(found, args.out, 0 if args.images else None)
    if args.json:
        print(json.dumps(found.to_dict(), ensure_ascii=False))
    else:
        print("\n".join([*embedding_map.summary_lines(found), *(f"note: {n}" for n in found.notes)]
                        + ([f"wrote {args.out}"] if args.out else [])))
    return 0


def _percent(x: float | None) -> str:
    return "   n/a" if x is None else f"{100 * x:6.2f}"


def format_evaluation(report: EvaluationReport, files: Sequence[Path]) -> str:
    from .run.evaluation import SCORES

    s = report.summary()
    model = report.model
    lines = [f"model: {model['label']} on {model['device']}"
             + ("  [RANDOM WEIGHTS: numbers are meaningless]" if model["random_weights"] else ""),
             f"data: {report.dataset['root']} ({report.dataset['kind']}): {s['n_images']} images evaluated, "
             f"{len(report.classes)} classes, {report.dataset['skipped_non_images']} non-image files skipped, "
             f"{len(report.corrupt)} unreadable images skipped, {len(report.dataset['problems'])} other problems",
             f"time: {report.timing['seconds']:.1f} s, {report.timing['images_per_second']:.2f} images/s "
             f"({report.timing['encoded']} encoded, {report.timing['from_cache']} from the feature cache)"]
    lines += [f"warning: {w}" for w in report.warnings]
    if len(report.classes) <= 5:
        lines.append(f"note: with {len(report.classes)} classes top-5 accuracy is 100% by definition; read top-1.")
    support = report.support_summary()
    if support is not None:
        lines.append(f"few-shot support set {support['root']}: {support['images']} labelled examples, "
                     f"{support['shots_per_class']} per class"
                     + (f"; {len(support['leaked_excluded'])} left out (also evaluated)" if support["leaked_excluded"]
                        else ""))
    lines += ["", f"{'strategy':<14}{'top-1 %':>9}{'top-5 %':>9}"]
    for sid, a in s["accuracy"].items():
        lines.append(f"{sid:<14}{_percent(a['top1']):>9}{_percent(a['top5']):>9}"
                     + ("" if a["selected"] else "   (computed for the baselines)"))
    low = s["low_confidence"]
    lines += ["", f"low-confidence set (binary rule): {low['size']} images "
                  f"({_percent(low['share']).strip()}% of the set)"]
    for sid, r in low["reranking"].items():
        lines.append(f"  {sid}: low set {_percent(r['low_before']).strip()} -> {_percent(r['low_after']).strip()}, "
                     f"full set {_percent(r['full_before']).strip()} -> {_percent(r['full_after']).strip()} "
                     f"(top-1 %, {r['baseline']} -> {sid})")
    sel = s["selective"]
    lines += ["", "AUROC (separating correct from wrong name-only predictions):"]
    for k, label in SCORES.items():
        v, own = sel["auroc"][k], sel["auroc_own"].get(k)
        lines.append(f"  {label:<46}{'n/a' if v is None else f'{v:.3f}':>7}"
                     + (f"   (vs CLIP-80's own correctness: {'n/a' if own is None else f'{own:.3f}'})"
                        if k in sel["auroc_own"] else ""))
    lines += ["", "each strategy's own top-1 probability as its confidence (AUROC vs its own correctness):"]
    for sid, r in sel["by_strategy"].items():
        lines.append(f"  {sid:<14}{'n/a' if r['auroc'] is None else format(r['auroc'], '.3f'):>7}")
    comparison = report.paper_comparison(s)
    if comparison:
        lines += ["", f"beside Ge et al. (CLIP ViT-B/16, {report.dataset['dataset']}; top-1 %):",
                  f"  {'strategy':<13}{'measure':<13}{'ours':>8}{'paper':>8}  source"]
        lines += [f"  {r['strategy']:<13}{r['measure']:<13}{'n/a' if r['ours'] is None else r['ours']:>8}"
                  f"{r['paper']:>8}  {r['paper_table']}" for r in comparison]
        if not comparison[0]["same_model"]:
            lines.append(f"  note: this model ({model['label']}) is not the paper's CLIP ViT-B/16 (OpenAI): "
                         "compare trends, not numbers.")
    pairs = sorted(s["arena"], key=lambda r: r["mcnemar_p"])[:ARENA_SHOWN]
    if pairs:
        lines += ["", "which strategy fixed what (top-1; McNemar's exact test, arena.csv has every pair):"]
        lines += [f"  {r['a']} vs {r['b']}: only {r['a']} right {r['only_a_right']}, only {r['b']} right "
                  f"{r['only_b_right']}, p = {r['mcnemar_p']:.3g}" for r in pairs]
    lines += format_shots(report)
    confused = s["confusions"].get("name", [])[:5]
    if confused:
        lines += ["", "most confused (name only): "
                  + "; ".join(f"{c['true']} -> {c['predicted']} ({c['count']})" for c in confused)]
    lines += ["", "written: " + ", ".join(str(f) for f in files)]
    return "\n".join(lines)


def format_shots(report: EvaluationReport) -> list[str]:
    """The shots curve as a table (top-1 %, mean ± s.d. over seeds) and what each zero-shot line is worth."""
    curve = report.shots_curve
    if curve is None:
        return []
    lines = ["", f"accuracy against shots per class (top-1 %, mean ± s.d. over {curve.seeds} seeds; "
                 f"{curve.seconds:.1f} s, no image embedded again):",
             f"  {'strategy':<14}" + "".join(f"{f'k={k}':>14}" for k in curve.shots)]
    for sid in curve.few_shot:
        cells = {p.k: f"{100 * p.mean:.1f} ± {100 * p.spread:.1f}" for p in curve.points if p.strategy == sid}
        lines.append(f"  {sid:<14}" + "".join(f"{cells[k]:>14}" for k in curve.shots))
    for sid, accuracy in curve.zero_shot.items():
        lines.append(f"  {sid:<14}{100 * accuracy:>14.1f}   (zero-shot)")
    lines += [f"  {c['sentence']}" for c in curve.crossings()]
    lines += [f"warning: {w}" for w in curve.warnings]
    return lines


def run_evaluate(args: argparse.Namespace) -> int:
    from .run import distributed
    from .core.archive import extract_zip
    from .run.evaluation import evaluate, evaluation_request
    from .engine.feature_store import DEFAULT_DIR, FeatureStore
    from .data.labelled import open_labelled, open_zip, read_class_map
    from .engine.models import get_model
    from .run.report import write_report
    from .run.shots import plan as shots_plan
    from .run.shots import seeds_flag
    from .wordnet.sparse import CACHE

    mapping = read_class_map(args.class_map) if args.class_map else None
    candidates = None
    if args.classes or args.classes_file or args.preset:
        candidates = parse_classnames(_read_classes(args)).names
    with tempfile.TemporaryDirectory(prefix="zsdemo-eval-") as tmp:
        source = Path(args.data)
        is_zip = is_regular_file(source) and source.suffix.lower() == ".zip"
        dataset = parse_dataset(args.dataset)
        if dataset is not None:
            if candidates is not None or mapping is not None:
                raise InputError("--dataset sets the classes and labels itself: leave out --classes, "
                                 "--classes-file, --preset and --class-map.")
            root = extract_zip(source, tmp).root if is_zip else source
            data = open_dataset(root, dataset)
        else:
            data = (open_zip(source, tmp, mapping, candidates) if is_zip
                    else open_labelled(source, mapping, candidates))
        # The request is checked once, before a model loads: a typo does not wait for it.
        request = evaluation_request(data, support_used=args.shots is not None,
                                     **_request_values(args, "evaluate", data.classes))
        if args.seeds is not None and args.shots is None:
            raise InputError("--seeds sets the draws of the shots curve: give --shots too (e.g. --shots 1,2,4,8,16).")
        curve = shots_plan(args.shots, seeds_flag(args.seeds), request)
        # Under torchrun: this rank's own device and shard; rank 0 alone reports (docs/evaluation.md).
        world = distributed.start(args.device)
        loaded = get_model(args.model, args.pretrained, distributed.rank_device(args.device, world), args.precision)
        store = None if args.no_cache else FeatureStore(args.cache or DEFAULT_DIR, loaded)
        CACHE.attach(None if args.no_cache else args.cache or DEFAULT_DIR)
        try:
            report = evaluate(loaded, data, request, batch_size=args.batch_size, store=store,
                              progress=progress_printer(args.quiet or not world.main), world=world, shots=curve)
        finally:
            for opened in (request.support, request.pool):
                if opened is not None:
                    opened.close()
            distributed.stop()
        if report is None:
            return 0                       # another rank: rank 0 prints and writes the report
        files = write_report(report, args.out)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
    else:
        print(format_evaluation(report, files))
    for f, why in report.corrupt:
        print(f"skipped: {why}", file=sys.stderr)
    return 0


def format_senses(senses: Sequence[ClassSense]) -> str:
    lines = []
    for cs in senses:
        lines.append(f"{cs.name}")
        if cs.chosen is None:
            lines.append("  no WordNet noun sense: the bare name is used")
        for sense in cs.senses:
            mark = "*" if cs.chosen and sense.synset == cs.chosen.synset else " "
            tag = " [instance]" if sense.instance else ""
            lines.append(f"  {mark} {sense.synset:<24} {sense.lexname:<18} {sense.gloss}{tag}")
        if cs.chosen is not None:
            lines.append(f"  sense used: {cs.chosen.synset} ({cs.reason})")
            lines.append(f"  parent: {cs.parent or '(none)'}")
            lines.append(f"  children: {', '.join(cs.children) or '(none)'}")
        lines.append("")
    return "\n".join(lines).rstrip()


def run_wordnet(args: argparse.Namespace) -> int:
    from .wordnet.senses import class_senses, parse_overrides

    names = parse_classnames(list(args.names)).names
    senses = class_senses(names, parse_overrides(args.sense))
    if args.json:
        print(json.dumps([s.to_dict() for s in senses], indent=2, ensure_ascii=False))
    else:
        print(format_senses(senses))
    return 0


def run_setup_wordnet() -> int:
    from .wordnet.senses import ensure_wordnet, reset

    reset()
    reader = ensure_wordnet()
    print(f"WordNet {reader.get_version()} is ready (found under {reader.root}).")
    return 0


def run_models() -> int:
    for p in MODEL_PRESETS.values():
        weights = f"{p.arch} / {p.pretrained}" if p.pretrained else f"{p.arch} / random weights"
        default = "  (default)" if p.id == DEFAULT_PRESET else ""
        print(f"{p.id:<12} {p.label:<40} {weights:<36} {p.note}{default}")
    print("\nAlso accepted: any open_clip architecture with --pretrained TAG|FILE, hf-hub:ORG/REPO, local-dir:PATH.")
    return 0


def run_strategies() -> int:
    from .strategies import STRATEGIES

    for s in STRATEGIES.values():
        print(f"{s.id:<12} {s.label:<30} {s.description}")
    return 0


OPTION_COMMANDS = ("classify", "evaluate", "map")      # the commands that take the methods' options


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(with_options=command in OPTION_COMMANDS).parse_args(argv)
    if not args.verbose:
        # Libraries log warnings (e.g. "no pretrained weights") that would clutter the output;
        # our own messages say what matters.
        logging.getLogger().addHandler(logging.NullHandler())
    try:
        check_environment()
        if args.command == "classify":
            return run_classify(args)
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "map":
            return run_map(args)
        if args.command == "wordnet":
            return run_wordnet(args)
        if args.command == "setup-wordnet":
            return run_setup_wordnet()
        if args.command == "models":
            return run_models()
        if args.command == "serve":
            from .app import main as serve  # Gradio is imported for the page only

            serve(args.flags)
            return 0
        return run_strategies()
    except ZsdemoError as e:
        print(f"error: {e.for_cli()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        # The file system said no where we did not expect it (permissions, a full disk): one
        # line naming the file, not a traceback.
        where = f" ({e.filename})" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
