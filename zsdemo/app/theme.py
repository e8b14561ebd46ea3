"""The page's theme (Gradio's theme API): Gradio's default look, with every colour that carries
text or a control at WCAG 2.2 AA contrast in light and dark mode.

Gradio's default draws hints, placeholders, the footer and the selected tab in zinc-400
(#bbbbc2, 1.9:1 on white) and white on orange-500 for the primary button (2.8:1); AA asks 4.5:1
for text and 3:1 for a control's boundary. axe-core checks the page drawn with these on every
view, light and dark (``tests/test_accessibility.py``).
"""

from __future__ import annotations

import gradio as gr

# Light mode on white, dark mode on Gradio's zinc-950 (#0f0f11).
VARIABLES = {
    # Hints, info lines, the footer, "- or -" in the upload boxes: zinc-600 (7.7:1) / zinc-400.
    "body_text_color_subdued": "*neutral_600",
    "body_text_color_subdued_dark": "*neutral_400",
    "block_info_text_color": "*neutral_600",
    "block_info_text_color_dark": "*neutral_400",
    "input_placeholder_color": "*neutral_500",          # 4.8:1
    "input_placeholder_color_dark": "*neutral_400",
    # The primary buttons (Classify, Evaluate): white on orange-700 (5.2:1), orange-800 on hover.
    "button_primary_background_fill": "*primary_700",
    "button_primary_background_fill_dark": "*primary_700",
    "button_primary_background_fill_hover": "*primary_800",
    "button_primary_background_fill_hover_dark": "*primary_800",
    # The selected tab, ticked boxes and sliders: orange-700 on white (5.2:1).
    "color_accent": "*primary_700",
    "link_text_color": "*secondary_700",
    "link_text_color_dark": "*secondary_300",
    "link_text_color_visited": "*secondary_800",
    "link_text_color_visited_dark": "*secondary_300",
    # Unticked boxes and input borders: 3:1 against their background (non-text contrast).
    "checkbox_border_color": "*neutral_500",
    "checkbox_border_color_dark": "*neutral_400",
    "input_border_color": "*neutral_500",
    "input_border_color_dark": "*neutral_400",
}
# Variables Gradio's ``set`` has no dark twin for (its CSS writer reads them all the same).
DARK_ONLY = {"color_accent_dark": "*primary_400"}       # orange-400 on zinc-950: 8.3:1


def theme() -> gr.themes.Base:
    """A fresh theme object (Gradio keeps state on it per launch)."""
    made = gr.themes.Default().set(**VARIABLES)
    for name, value in DARK_ONLY.items():
        setattr(made, name, value)
    return made
