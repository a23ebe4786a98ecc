"""Frozen configuration objects. Defaults are the values measured on LFW (see docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DetectConfig:
    # Photos up to this long side are searched whole in one pass. Larger ones are decoded at the
    # smallest JPEG DCT scale whose long side is still at least this ("fine" level: 1/2 for a 4032 px
    # photo); faces there are as findable as in the plain OpenCV loop's 1280 px image or better.
    max_side: int = 1280
    # Larger photos are first searched whole at this long side (the coarse pass, 2.7x cheaper than
    # 1280), then looked at again on the fine level only in windows around the coarse pass's weak
    # candidates (score >= cue_threshold). On the 12 MP bench this finds 18 of 19 pasted 40-60 px
    # faces (a single 1280 px pass: 17) for the same detector time, ~13 windows a photo
    # (bench/import_12mp.py, docs/benchmarks.md). coarse_side >= max_side: one pass at max_side.
    coarse_side: int = 800
    cue_threshold: float = 0.03
    # A coarse detection at least this wide (coarse pixels, ~100 px of a 4032 px photo) with a full
    # score is kept as it is: its landmarks are already precise to a few per cent of the face. Weak
    # candidates 1.5x this size or more are dropped: a real face that large scores high already.
    sure_face_px: int = 20
    # Faces are cropped from the coarsest decoded level that still gives them this many pixels of
    # width; smaller ones from a full decode. At 40 px the SFace embedding is within cosine 0.98 of
    # the full-resolution one on average (80-130 px faces from a 1/2 decode, bench set).
    sharp_face_px: int = 40
    score_threshold: float = 0.6
    nms_threshold: float = 0.3
    top_k: int = 5000
    # Faces narrower than this (in original-image pixels) are ignored: too small to recognise.
    min_face_px: int = 20
    # Pixels the aligned crop should have per face width; decides the JPEG draft scale for the
    # training crops (engine.pipeline.crops).
    crop_face_px: int = 160
    # Detector threads per worker (the importer runs one worker per core).
    threads: int = 1
    # Run YuNet on CUDA (onnxruntime-gpu); the CPU when CUDA is absent (engine.models.accel).
    use_gpu: bool = False


@dataclass(frozen=True)
class EmbedConfig:
    # Faces per network call. Small batches keep SFace's activations in cache: 13.4 ms/face on one
    # thread at 8 against 17.0 at 32 (bench/import_throughput.py); 4 against 8: 15.2 vs 16.5 ms, one
    # thread, same run (docs/benchmarks.md, "12 MP, third round").
    batch_size: int = 4
    threads: int = 0  # network calls run side by side, one thread each; 0 = one per core
    # Average the embeddings of the face and its mirror image: +0.2 points on LFW View-1 dev pairs
    # at twice the network cost, so it is off for imports (docs/benchmarks.md).
    flip: bool = False
    # Run SFace on CUDA (onnxruntime-gpu), in larger batches; the CPU when CUDA is absent (engine.models.accel).
    use_gpu: bool = False


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
    # Grouping threshold T on squared L2 (= 2 - 2 cos). The default method, "stable" (engine/grouping/
    # density.py), keeps the most stable groups of the constrained single-linkage tree: faces linked within
    # 0.78 T always end together, nothing joins beyond 1.13 T, a single face joins a group only within T.
    # Chosen on family-shaped libraries (20-40 people: lag-dev children and adults, LFW people with >= 10
    # photos degraded like phone photos, mixtures), cross-validated over identities: the best BCubed F1
    # whose precision stays >= 0.98 (a wrong merge is harder to fix than a split). Held out: P 0.984,
    # F1 0.866, 11.7 corrections per 100 faces, against 0.983 / 0.778 / 17.8 for average linkage at 1.15
    # and 0.994 / 0.692 / 24.0 for the former default (average, 1.05, tuned on all of LFW, where most
    # people have one photo; docs/clustering.md).
    threshold: float = 1.20
    method: str = "stable"
    k: int = 30
    # Share of the library's mean embedding removed before grouping (engine/grouping/normalise.py); 0 = off.
    # Off by default: measured on the family-shaped libraries (docs/clustering.md, "Per-library
    # normalisation") 0.6 with T 1.35 raised held-out F1 0.866 -> 0.880, but with 20 % strangers it gave
    # the same F1 (0.888) at a different T (1.25-1.30), so T does not carry over and the gain is not robust.
    # A threshold chosen for one setting of this is wrong for another.
    centre: float = 0.0
    # The stable method lengthens edges between two faces the model's child classifier finds child-like
    # (engine/grouping/children.py; the penalty is the model's, SFace's 0.1). At T 1.20 on the development
    # libraries: the same F1 (0.866), lag-dev precision 0.960 -> 0.972 and its wrong merges of different
    # people 1,595 -> 962 per million pairs (-40 %), at 0.3 more corrections per 100 faces there (22.7 ->
    # 23.2; docs/clustering.md, "Keeping children apart"). False: group without it.
    separate_children: bool = True
    # Recognition: a new face is suggested for a named person when its nearest faces of that
    # person vote for it within this squared distance (a little stricter than grouping).
    recognise_threshold: float = 1.0
    min_group_size: int = 1


@dataclass(frozen=True)
class VerifyConfig:
    # Squared L2 threshold for "same person": the mean of the 10 LFW fold thresholds (1.3324,
    # docs/evaluation.md). At FAR = 1e-3 it would be about 1.27.
    threshold: float = 1.33
