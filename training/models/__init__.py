"""Torch embedding networks. Every model maps float NCHW RGB in 0..255 (what the engine feeds
onnxruntime) to raw, not yet L2-normalised, embeddings, and exposes ``stages()`` so training can
freeze all but the last few.

Interface shared by all models: ``forward(x) == head(body(preprocess(x)))`` where ``body`` is an
``nn.Sequential``; ``stages()`` lists (name, modules) groups from input to output, the last one
named "head". :func:`training.train.split_model` relies on it to cache frozen features.
"""

from .sface_torch import SFaceNet, load_sface
from .tiny_cnn import TinyCNN

__all__ = ["SFaceNet", "TinyCNN", "load_sface"]
