"""A toy method, as docs/architecture.md's "Adding a method" writes it: one module (this one) and one line
that registers it. It sharpens the name-only logits by a power, its one option."""

from __future__ import annotations

from dataclasses import dataclass

from zsdemo.prompts.templates import NAME_ONLY
from zsdemo.strategies import Batch, Request, Scores, Strategy
from zsdemo.strategies.options import option


@dataclass(frozen=True)
class SharpSettings:
    power: float = option(2.0, "sharp_power", "Sharpening power", "multiply the name-only logits by this",
                          low=0.5, high=8.0, info="how much sharper than name only")


class SharpStrategy(Strategy):
    id = "sharp"
    label = "Sharpened name"
    description = "name only, its logits multiplied by a power (a toy)"
    options = SharpSettings

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        return (NAME_ONLY,)

    def score(self, batch: Batch) -> Scores:
        return Scores(batch.logits(NAME_ONLY) * self.settings(batch.request).power)


SHARP = SharpStrategy()
