"""The model catalogue: one registration line per model; each model's folder (catalog/<model>/) says the rest.

Adding a model: a new folder whose ``spec()`` returns a ModelSpec (catalog/spec.py), and one line below.
"""

from __future__ import annotations

from reelgate.catalog import custom_element
from reelgate.catalog.spec import InlineMedia, ModelSpec

__all__ = ["InlineMedia", "ModelSpec", "default_catalog"]


def default_catalog() -> dict[str, ModelSpec]:
    specs = [
        custom_element.spec(),
    ]
    return {spec.name: spec for spec in specs}
