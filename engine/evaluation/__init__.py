"""Evaluation of the recognition pipeline: the FaceNet pair-verification protocol and LFW."""

from .lfw import (
    LfwEmbeddings,
    LfwPair,
    embed_lfw,
    embed_lfw_images,
    pair_images,
    parse_pairs,
    parse_people,
    run_lfw_eval,
)
from .protocol import (
    DEFAULT_THRESHOLDS,
    PairEvaluation,
    evaluate_distances,
    evaluate_pairs,
    roc_curve,
    squared_l2,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "LfwEmbeddings",
    "LfwPair",
    "PairEvaluation",
    "embed_lfw",
    "embed_lfw_images",
    "evaluate_distances",
    "evaluate_pairs",
    "pair_images",
    "parse_pairs",
    "parse_people",
    "roc_curve",
    "run_lfw_eval",
    "squared_l2",
]
