"""The model at work: presets and weights, the model registry, text and image features (and
their caches), class vectors, image views, the consistency check, the prompt context that TPT
and CoOp learn, and the typed results."""
