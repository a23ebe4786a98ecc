"""Evaluation of the recognition pipeline: the FaceNet pair-verification protocol and LFW, and the
paper-style tables: image-quality robustness, embedding storage, clustering sweeps, a dlib baseline."""

from .baseline import run_dlib_baseline
from .clustering import run_cluster_sweep, threshold_sweep
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
from .protocol import DEFAULT_THRESHOLDS, PairEvaluation, evaluate_distances, evaluate_pairs, roc_curve, squared_l2
from .robustness import run_robustness_eval
from .storage import evaluate_storage, run_storage_eval

__all__ = [
    "DEFAULT_THRESHOLDS",
    "LfwEmbeddings",
    "LfwPair",
    "PairEvaluation",
    "embed_lfw",
    "embed_lfw_images",
    "evaluate_distances",
    "evaluate_pairs",
    "evaluate_storage",
    "pair_images",
    "parse_pairs",
    "parse_people",
    "roc_curve",
    "run_cluster_sweep",
    "run_dlib_baseline",
    "run_lfw_eval",
    "run_robustness_eval",
    "run_storage_eval",
    "squared_l2",
    "threshold_sweep",
]
