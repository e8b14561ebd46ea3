import gradio as gr

import app


def test_app_builds_with_its_classify_endpoint():
    demo = app.build_app("tiny-random", None, "cpu")
    assert isinstance(demo, gr.Blocks)
    assert any(getattr(fn, "api_name", None) == "classify" for fn in demo.fns.values())
