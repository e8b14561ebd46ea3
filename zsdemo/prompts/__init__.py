"""Words: prompt templates, class names and their presets, open_clip's class lists, descriptors."""
