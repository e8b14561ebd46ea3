"""An evaluation's report as files: report.json, the CSV tables and coverage.png.

Apart from the evaluation loop (``evaluation.py``): the loop produces an ``EvaluationReport``; the
command line and the app's downloads write it here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from . import plots
from ..core.errors import InputError
from .evaluation import SCORES, EvaluationReport
from .shots import CSV_HEADER, ShotsCurve


def write_report(report: EvaluationReport, out_dir: str | Path) -> list[Path]:
    """report.json, CSV tables and coverage.png in ``out_dir``; returns the files written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:      # an existing file of that name, no permission, a full disk...
        raise InputError(f"Cannot write the report to {str(out)!r}: {e.strerror or e}.",
                         cli=" Give a folder (--out) that can be created or already exists.") from None
    data = report.to_dict()
    files = []

    def table(name: str, header: list[str], rows: list[list[Any]]) -> None:
        path = out / name
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows([[_cell(v) for v in row] for row in rows])
        files.append(path)

    path = out / "report.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    files.append(path)
    acc = data["accuracy"]
    table("accuracy.csv", ["strategy", "label", "selected", "top1", "top5"],
          [[s, a["label"], a["selected"], a["top1"], a["top5"]] for s, a in acc.items()])
    low = data["low_confidence"]
    table("low_confidence.csv",
          ["strategy", "baseline", "low_set_size", "low_set_share", "low_before", "low_after", "full_before",
           "full_after"],
          [[s, r["baseline"], low["size"], low["share"], r["low_before"], r["low_after"], r["full_before"],
            r["full_after"]] for s, r in low["reranking"].items()])
    sel = data["selective"]
    table("auroc.csv", ["score", "label", "auroc_vs_name_only_correct", "auroc_vs_own_classifier"],
          [[k, SCORES[k], sel["auroc"][k], sel["auroc_own"].get(k)] for k in SCORES])
    table("coverage.csv", ["score", "coverage", "accuracy"],
          [[k, c, a] for k, curve in sel["coverage"].items() for c, a in curve])
    own = sel["by_strategy"]
    table("strategy_confidence.csv", ["strategy", "label", "score", "auroc_vs_own_correct",
                                      "auroc_vs_name_only_correct"],
          [[k, r["label"], r["score"], r["auroc"], r["auroc_name_correct"]] for k, r in own.items()])
    table("strategy_coverage.csv", ["strategy", "coverage", "accuracy"],
          [[k, c, a] for k, r in own.items() for c, a in r["coverage"]])
    table("per_class.csv", ["class", "images", *report.strategies],
          [[r["class"], r["images"], *[r[s] for s in report.strategies]] for r in data["per_class"]])
    table("confusions.csv", ["strategy", "true", "predicted", "count"],
          [[s, c["true"], c["predicted"], c["count"]] for s, cs in data["confusions"].items() for c in cs])
    classes = report.classes
    table("predictions.csv",
          ["file", "label", *[f"{s}_top1" for s in report.strategies], "low_confidence", *SCORES],
          [[r.file, classes[r.label], *[classes[r.top5[s][0]] for s in report.strategies], r.low_confidence,
            *[r.scores[k] for k in SCORES]] for r in report.records])
    if report.corrupt:
        table("skipped_images.csv", ["file", "error"], [list(c) for c in report.corrupt])
    table("arena.csv", ["strategy_a", "strategy_b", "only_a_right", "only_b_right", "both_right", "both_wrong",
                        "mcnemar_p"],
          [[r["a"], r["b"], r["only_a_right"], r["only_b_right"], r["both_right"], r["both_wrong"], r["mcnemar_p"]]
           for r in data["arena"]])
    if data["paper_comparison"]:
        table("paper_comparison.csv", ["strategy", "measure", "ours", "paper", "paper_table", "paper_model",
                                       "same_model"],
              [[r[k] for k in ("strategy", "measure", "ours", "paper", "paper_table", "paper_model", "same_model")]
               for r in data["paper_comparison"]])
    fig = plots.coverage_curves({SCORES[k]: v for k, v in sel["coverage"].items()},
                                {SCORES[k]: sel["auroc"][k] for k in SCORES})
    path = out / "coverage.png"
    fig.savefig(path, dpi=plots.DPI)
    files.append(path)
    fig = plots.strategy_coverage({r["label"]: r["coverage"] for r in own.values()},
                                  {r["label"]: r["auroc"] for r in own.values()})
    path = out / "strategy_coverage.png"
    fig.savefig(path, dpi=plots.DPI)
    files.append(path)
    if report.shots_curve is not None:
        table("shots_curve.csv", CSV_HEADER, report.shots_curve.rows())
        path = out / "shots_curve.png"
        shots_figure(report.shots_curve).savefig(path, dpi=plots.DPI)
        files.append(path)
    return files


def shots_data(curve: ShotsCurve) -> tuple[dict[str, list[tuple[int, float, float]]], dict[str, float]]:
    """What the shots figure draws: each few-shot method's (k, mean, spread) and each zero-shot line."""
    return ({curve.labels[s]: [(p.k, p.mean, p.spread) for p in curve.points if p.strategy == s]
             for s in curve.few_shot}, {curve.labels[z]: a for z, a in curve.zero_shot.items()})


def shots_figure(curve: ShotsCurve):
    """shots_curve.png, and the Evaluate tab's plot of it."""
    return plots.shots_curve(*shots_data(curve), curve.shots, curve.seeds)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
