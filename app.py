"""zsdemo web app (Gradio): layout and event wiring only; all work happens in ``zsdemo``.

    python app.py [--model PRESET|SPEC] [--pretrained TAG|FILE] [--device auto|cpu|cuda]
                  [--host 127.0.0.1] [--port 7860] [--share]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gradio as gr

from zsdemo.classnames import PRESETS as CLASS_PRESETS
from zsdemo.errors import ZsdemoError
from zsdemo.models import DEFAULT_PRESET, PRESETS, get_model
from zsdemo.pipeline import classify
from zsdemo.results import summary_rows
from zsdemo.strategies import STRATEGIES

ASSETS = Path(__file__).parent / "assets" / "images"


def build_app(model: str, pretrained: str | None, device: str) -> gr.Blocks:
    def run(files, classes, preset, strategies, templates, model_choice):
        try:
            loaded = get_model(model_choice or model, pretrained if model_choice == model else None, device)
            paths = [getattr(f, "name", f) for f in (files or [])]
            text = "\n".join(CLASS_PRESETS[preset]) if preset else classes
            result = classify(loaded, paths, text, strategies, templates or None,
                              names=[os.path.basename(p) for p in paths])
        except ZsdemoError as e:
            raise gr.Error(str(e), print_exception=False) from None
        headers, rows = summary_rows(result)
        notes = "\n".join(f"- {w}" for w in result.warnings) or ""
        return gr.Dataframe(value=rows, headers=headers), result.to_dict(), notes

    with gr.Blocks(title="zsdemo: zero-shot classification lab") as demo:
        gr.Markdown("# zsdemo: zero-shot image classification with CLIP\n"
                    "Upload images, type class names, pick prompt strategies, compare.")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Images", file_count="multiple", file_types=["image"],
                                value=[str(p) for p in sorted(ASSETS.glob("*"))][:2])
                classes = gr.Textbox(label="Class names (comma or new line separated)",
                                     value="cat, dog, coffee mug, rocket, astronaut", lines=3)
                preset = gr.Dropdown(label="or a class-name preset", choices=[("none", "")] + [
                    (k, k) for k in CLASS_PRESETS], value="")
                strategies = gr.CheckboxGroup(
                    label="Strategies", value=["name", "photo", "clip80"],
                    choices=[(f"{s.label}: {s.description}", s.id) for s in STRATEGIES.values()])
                templates = gr.Textbox(label="Custom templates (one per line, each with {})", lines=2)
                model_choice = gr.Dropdown(label="Model", value=model, allow_custom_value=True,
                                           choices=[(p.label, p.id) for p in PRESETS.values()])
                button = gr.Button("Classify", variant="primary")
            with gr.Column():
                table = gr.Dataframe(label="Top-1 per strategy")
                notes = gr.Markdown()
                details = gr.JSON(label="Full result")
        button.click(run, [files, classes, preset, strategies, templates, model_choice],
                     [table, details, notes], api_name="classify")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="zsdemo web app")
    parser.add_argument("--model", default=os.environ.get("ZSDEMO_MODEL", DEFAULT_PRESET))
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args()
    demo = build_app(args.model, args.pretrained, args.device)
    demo.queue(default_concurrency_limit=2).launch(server_name=args.host, server_port=args.port,
                                                   share=args.share)


if __name__ == "__main__":
    main()
