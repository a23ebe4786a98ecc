"""Model registry: where the ONNX weights live, their checksums, and loading them safely.

Weights ship in ``resources/models`` and are verified against ``checksums.sha256`` before use;
nothing is ever downloaded. The int8 block-quantised SFace graph stores its weights as
DequantizeLinear constants; we fold every all-constant node once at load time so onnxruntime runs
a plain fp32 graph (about twice as fast on CPU) with a dynamic batch axis.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from engine.checksums import sha256_file
from engine.config import ClusterConfig, VerifyConfig
from engine.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    filename: str
    kind: str  # "detector" | "embedder"
    sha256: str
    embedding_dim: int = 0
    input_size: int = 0
    # How the file becomes the graph the embedder runs: "sface" (fold the int8 constants; the graph
    # takes 0..255 RGB) or "arcface" (InsightFace's layout: normalisation and a dynamic batch axis
    # added here, see arcface_graph).
    graph: str = "sface"


@dataclass(frozen=True)
class Thresholds:
    """Squared-L2 thresholds of one embedding space (they differ between models)."""

    verify: float  # "same person" (the mean of the LFW 10-fold thresholds)
    cluster: float  # average-linkage grouping
    recognise: float  # a new face suggested for a named person
    source: str = ""


YUNET = ModelSpec(
    model_id="yunet-2023mar-int8bq",
    filename="face_detection_yunet_2023mar_int8bq.onnx",
    kind="detector",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
)
SFACE = ModelSpec(
    model_id="sface-2021dec-int8bq",
    filename="face_recognition_sface_2021dec_int8bq.onnx",
    kind="embedder",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    embedding_dim=128,
    input_size=112,
)
BUILTIN = {m.model_id: m for m in (YUNET, SFACE)}
# SFace's values are engine.config's defaults (LFW: docs/evaluation.md, docs/clustering.md); read from
# there so the two can never disagree.
SFACE_THRESHOLDS = Thresholds(VerifyConfig().threshold, ClusterConfig().threshold, ClusterConfig().recognise_threshold,
                              "LFW 10-fold threshold; grouping calibrated on family-shaped sets")


def models_dir() -> Path:
    return Path(str(resources.files("resources") / "models"))


_verified: dict[tuple[str, str], Path] = {}
_verify_lock = threading.Lock()


def verified_path(spec: ModelSpec, path: Path | None = None) -> Path:
    """Return the model's path after checking its SHA-256; raise ModelError otherwise."""
    path = Path(path) if path is not None else models_dir() / spec.filename
    key = (str(path), spec.sha256)
    with _verify_lock:
        if key in _verified:
            return _verified[key]
        if not path.is_file():
            raise ModelError(f"model file not found: {path} (reinstall facenet-photos)")
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise ModelError(
                f"model file {path.name} has the wrong checksum (expected {spec.sha256[:12]}…, "
                f"got {digest[:12]}…); refusing to load it"
            )
        _verified[key] = path
        return path


def fold_constants(model_bytes: bytes, keep_inputs: tuple[str, ...] = ("data",)) -> bytes:
    """Fold all-constant nodes (DequantizeLinear, weight Reshape) into fp32 initializers,
    drop stray graph inputs and give the first input and the outputs a dynamic batch axis."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    try:
        model = onnx.load_from_string(model_bytes)
    except Exception as exc:  # protobuf raises several types
        raise ModelError(f"model file is not a valid ONNX graph: {exc}") from exc
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept_nodes = []
    opset = [onnx.helper.make_opsetid(o.domain, o.version) for o in model.opset_import]
    for node in graph.node:
        if node.op_type != "Constant" and node.input and all(i in consts for i in node.input if i):
            sub = onnx.helper.make_graph(
                [node],
                "fold",
                [],
                [onnx.helper.make_tensor_value_info(o, 0, None) for o in node.output],
                initializer=[numpy_helper.from_array(consts[i], i) for i in node.input if i],
            )
            sub_model = onnx.helper.make_model(sub, opset_imports=opset)
            try:
                outs = ReferenceEvaluator(sub_model).run(None, {})
            except Exception:
                outs = None
            if outs is None:
                kept_nodes.append(node)
                continue
            for name, val in zip(node.output, outs, strict=True):
                consts[name] = np.asarray(val)
        else:
            kept_nodes.append(node)
    used = {i for n in kept_nodes for i in n.input} | {o.name for o in graph.output}
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items() if k in used)
    inputs = [i for i in graph.input if i.name in keep_inputs]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]
    _dynamic_batch([*graph.input[:1], *graph.output])
    return model.SerializeToString()


def _dynamic_batch(values) -> None:
    """Make the first axis of these graph inputs/outputs a symbolic "batch" (exported with 1)."""
    for vi in values:
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


@lru_cache(maxsize=8)
def _folded_bytes(path_str: str, sha: str) -> bytes:
    return fold_constants(Path(path_str).read_bytes())


def folded_model_bytes(spec: ModelSpec, path: Path | None = None) -> bytes:
    p = verified_path(spec, path)
    return _folded_bytes(str(p), spec.sha256)


def arcface_graph(model_bytes: bytes) -> bytes:
    """An InsightFace ArcFace graph made to take what the embedder feeds SFace.

    InsightFace's recognition models expect ``(x - 127.5) / 127.5`` of RGB (their
    ``blobFromImage(..., 1/127.5, mean 127.5, swapRB)``); SFace does that inside its graph, so the
    embedder feeds float 0..255 RGB NCHW. Here the same two steps (Sub, Mul) are put in front of the
    first node, the input is named ``data`` like SFace's, and the batch axis (fixed at 1 on the
    output of w600k_mbf) is made dynamic, so batches of 8 run as one call.
    """
    import onnx
    from onnx import helper, numpy_helper

    try:
        model = onnx.load_from_string(model_bytes)
    except Exception as exc:  # protobuf raises several types
        raise ModelError(f"model file is not a valid ONNX graph: {exc}") from exc
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelError("not an ArcFace embedding graph (expected one image input and one output)")
    old = inputs[0].name
    raw = "data"
    graph.initializer.extend([
        numpy_helper.from_array(np.array(127.5, np.float32), "data__mean"),
        numpy_helper.from_array(np.array(1.0 / 127.5, np.float32), "data__scale"),
    ])
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = "data__normalised"
    pre = [
        helper.make_node("Sub", [raw, "data__mean"], ["data__centred"]),
        helper.make_node("Mul", ["data__centred", "data__scale"], ["data__normalised"]),
    ]
    nodes = pre + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    inputs[0].name = raw
    del graph.value_info[:]  # shapes recorded for batch 1 would contradict the dynamic axis
    _dynamic_batch([inputs[0], *graph.output])
    return model.SerializeToString()


@lru_cache(maxsize=4)
def _arcface_bytes(path_str: str, sha: str) -> bytes:
    return arcface_graph(Path(path_str).read_bytes())


def prepared_model_bytes(spec: ModelSpec, path: Path | None = None) -> bytes:
    """The checked file as the graph the embedder runs (0..255 RGB NCHW in, dynamic batch)."""
    if spec.graph == "arcface":
        p = verified_path(spec, path)
        return _arcface_bytes(str(p), spec.sha256)
    if spec.graph != "sface":
        raise ModelError(f"unknown graph layout {spec.graph!r} for model {spec.model_id}")
    return folded_model_bytes(spec, path)
