"""Frozen configuration objects. Defaults are the values measured on LFW (see docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DetectConfig:
    # Photos are decoded at reduced scale so their long side is at most this for detection.
    max_side: int = 1280
    score_threshold: float = 0.6
    nms_threshold: float = 0.3
    top_k: int = 5000
    # Faces narrower than this (in original-image pixels) are ignored: too small to recognise.
    min_face_px: int = 20
    # Pixels the aligned crop should have per face width; decides the JPEG draft scale for crops.
    crop_face_px: int = 160


@dataclass(frozen=True)
class EmbedConfig:
    # Faces per network call. 8 keeps SFace's activations in cache: 13.4 ms/face on one thread
    # against 17.0 at 32 (bench/import_throughput.py).
    batch_size: int = 8
    threads: int = 0  # 0 = onnxruntime's default (all cores)
    # Average the embeddings of the face and its mirror image: +0.2 points on LFW View-1 dev pairs
    # at twice the network cost, so it is off for imports (docs/benchmarks.md).
    flip: bool = False


@dataclass(frozen=True)
class ImportConfig:
    detect: DetectConfig = field(default_factory=DetectConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    # Photos per database transaction: a killed import loses at most one batch of work.
    commit_every: int = 32
    # Refuse images above this many pixels (decompression-bomb guard).
    max_pixels: int = 200_000_000
    max_file_bytes: int = 512 * 1024 * 1024
    cluster_after: bool = True


@dataclass(frozen=True)
class ClusterConfig:
    # Average-linkage threshold on squared L2 (= 2 - 2 cos) up to which groups merge. Chosen on
    # family-shaped libraries (20-40 people: lag-dev children and adults, LFW people with >= 10 photos
    # degraded like phone photos, mixtures), cross-validated over identities: the best BCubed F1 whose
    # precision stays >= 0.98 (a wrong merge is harder to fix than a split). Held out: P 0.983, F1 0.778,
    # 17.8 corrections per 100 faces, against 0.994 / 0.692 / 24.0 at the former 1.05, which was tuned
    # on all of LFW, where most people have one photo (docs/clustering.md).
    threshold: float = 1.15
    k: int = 30
    # Recognition: a new face is suggested for a named person when its nearest faces of that
    # person vote for it within this squared distance (a little stricter than grouping).
    recognise_threshold: float = 1.0
    min_group_size: int = 1


@dataclass(frozen=True)
class VerifyConfig:
    # Squared L2 threshold for "same person": the mean of the 10 LFW fold thresholds (1.3324,
    # docs/evaluation.md). At FAR = 1e-3 it would be about 1.27.
    threshold: float = 1.33
