"""Small helpers over lm-eval's logged samples and metrics that the run and every kind's evaluation
module share: the model's reply of a sample (``output_of``) and a metric as people read it (``show``)."""

from __future__ import annotations

import math
from typing import Any


def output_of(sample: dict[str, Any]) -> str:
    """The model's (filtered) reply of one logged sample."""
    output = sample.get("filtered_resps", sample.get("resps", [""]))
    while isinstance(output, list):
        output = output[0] if output else ""
    return str(output)


def show(value: Any) -> str:
    """A metric for people: 4 decimals, "—" for NaN or null (no question in that split)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.4f}"
