"""Model registry: name -> constructor. ``create("sface")`` is the bundled SFace with its weights;
``create("sface", pretrained=False)`` the same architecture freshly initialised; ``"tiny-cnn"`` a
small network for from-scratch experiments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[[bool], nn.Module]  # pretrained -> module
    has_pretrained: bool
    description: str


def _sface(pretrained: bool) -> nn.Module:
    from training.models.sface_torch import SFaceNet, load_sface

    return load_sface() if pretrained else SFaceNet()


def _tiny(pretrained: bool) -> nn.Module:
    from training.models.tiny_cnn import TinyCNN

    return TinyCNN()


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry("sface", _sface, True, "SFace 2021dec (MobileFaceNet-like), from the bundled ONNX"),
        ModelEntry("tiny-cnn", _tiny, False, "4-stage conv/BN/ReLU net at 56x56, ~0.7M parameters"),
    )
}


def create(name: str, pretrained: bool = True) -> nn.Module:
    """The named model, with its pretrained weights when it has any and ``pretrained``."""
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}") from None
    return entry.build(pretrained and entry.has_pretrained)


def available() -> list[str]:
    return sorted(REGISTRY)
