"""The page's GPU work, one function per kind of call, each a ZeroGPU task (``gpu.task``).

Their arguments and results are plain data (the server's ``AppConfig``, dicts of request
arguments by name, paths, a ``StopFlag``, a ``PageProgress``), so that they pickle into and out
of ZeroGPU's worker process; elsewhere they are ordinary calls.
"""

from __future__ import annotations

import math
from typing import Any

from ..core.progress import StopFlag
from ..engine import occlusion
from . import classifying, embedding_map, evaluating, gpu, inspecting, state as app_state, toasts
from ..run import embedding_map as maps


def _run_seconds(config: app_state.AppConfig, args: dict[str, Any], *_: Any, **__: Any) -> float:
    return classifying.run_seconds(config, rates=gpu.RATES, **args)


def _unknown_seconds(*_: Any, **__: Any) -> float:
    return math.inf          # an evaluation books the longest (its work is bounded by the zip limits)


@gpu.task(_run_seconds)
def classify(config: app_state.AppConfig, args: dict[str, Any], stop: StopFlag | None = None,
             progress: gpu.PageProgress | None = None, answer: str = "state") -> dict[str, Any]:
    """``classifying.run`` with ``args`` (its arguments by name); the page's state (``answer="state"``)
    or the API's JSON (``"api"``). A run with a progress bar is a page's: slow runs are announced."""
    run = classifying.run(config, stop=stop, progress=progress, announce=toasts.info if progress is not None else None,
                      **args)
    return run.to_state() if answer == "state" else run.to_dict()


@gpu.task(_unknown_seconds)
def evaluate_page(config: app_state.AppConfig, upload: object, strategies: object, options: dict[str, Any],
                  stop: StopFlag | None = None, progress: gpu.PageProgress | None = None) -> tuple:
    """The Evaluate tab: its panels and the report files (``evaluating.evaluate_zip``)."""
    return evaluating.evaluate_zip(config, upload, strategies, stop=stop, progress=progress, **options)


@gpu.task(_unknown_seconds)
def evaluate_api(config: app_state.AppConfig, upload: object, strategies: object,
                 options: dict[str, Any]) -> dict[str, Any]:
    """The ``/evaluate`` API: the report as JSON."""
    return evaluating.evaluate_upload(config, upload, strategies, **options).to_dict()


def _occlusion_seconds(config: app_state.AppConfig, state: dict[str, Any] | None, index: object, class_name: object,
                       grid: object, *_: Any, **__: Any) -> float:
    return occlusion.passes(occlusion.check_grid(grid)) / gpu.RATES.images_per_second


@gpu.task(_occlusion_seconds)
def where_it_looks(config: app_state.AppConfig, state: dict[str, Any] | None, index: object, class_name: object,
                   grid: object, stop: StopFlag | None = None, progress: gpu.PageProgress | None = None) -> str:
    """The occlusion map of the inspected image (``inspecting.where_it_looks``), as the page's HTML."""
    return inspecting.where_it_looks(config, app_state.Run.from_state(state), index, class_name, grid, progress, stop)


def _map_seconds(config: app_state.AppConfig, args: dict[str, Any], *_: Any, **__: Any) -> float:
    return embedding_map.map_seconds(config, gpu.RATES, **args)


@gpu.task(_map_seconds)
def map_api(config: app_state.AppConfig, args: dict[str, Any]) -> dict[str, Any]:
    """The ``/embedding_map`` API: every point, as JSON."""
    return embedding_map.map_request(config, **args).to_dict()


def _run_map_seconds(config: app_state.AppConfig, state: dict[str, Any] | None, *_: Any, **__: Any) -> float:
    return embedding_map.run_map_seconds(config, app_state.Run.from_state(state), gpu.RATES)


@gpu.task(_run_map_seconds)
def map_of_run(config: app_state.AppConfig, state: dict[str, Any] | None, separate: object,
               stop: StopFlag | None = None, progress: gpu.PageProgress | None = None) -> dict[str, Any]:
    """The map of the page's last run, thinned to what a browser draws (``maps.PAGE_POINTS``)."""
    found = embedding_map.map_of_run(config, app_state.Run.from_state(state), separate, progress, stop)
    return maps.thinned(found)[0].to_dict()
