"""A new embedding head on a pack model's trunk, as an ONNX file for the engine (no torch needed).

``arcface-mbf-h128`` is the arcface-mbf network (its 512-D output, L2-normalised) followed by a linear
layer to 128-D, trained with the harmonic triplet loss against SFace's embeddings (bench/
harmonic_mbf_head.py), so its faces are comparable with a library embedded by SFace. The weights of
the head are derived from non-commercial weights and research data: the file is built on the user's
machine and registered into their library (``Library.register_model``), never shipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.models.packs import ModelPack, pack_path
from engine.models.registry import arcface_graph


def graph_with_linear_head(trunk_bytes: bytes, weight: np.ndarray, bias: np.ndarray) -> bytes:
    """``trunk_bytes`` (an engine-layout graph: 0..255 RGB ``data`` in, one (N, D) output) followed by
    L2 normalisation and ``y = x @ weight.T + bias``: (N, D) -> (N, out)."""
    import onnx
    from onnx import helper, numpy_helper

    weight = np.asarray(weight, np.float32)
    bias = np.asarray(bias, np.float32)
    model = onnx.load_from_string(trunk_bytes)
    g = model.graph
    trunk_out = g.output[0].name
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(f"head weight {weight.shape} and bias {bias.shape} do not match")
    g.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(weight.T), "head__w"),
        numpy_helper.from_array(bias, "head__b"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "head__eps"),
    ])
    # From opset 18 ReduceL2 takes its axes as an input (SFace's graph), before that as an attribute.
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset >= 18:
        g.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "head__axes"))
        reduce = helper.make_node("ReduceL2", [trunk_out, "head__axes"], ["head__norm"], keepdims=1)
    else:
        reduce = helper.make_node("ReduceL2", [trunk_out], ["head__norm"], axes=[1], keepdims=1)
    g.node.extend([
        reduce,
        helper.make_node("Max", ["head__norm", "head__eps"], ["head__norm_safe"]),
        helper.make_node("Div", [trunk_out, "head__norm_safe"], ["head__unit"]),
        helper.make_node("MatMul", ["head__unit", "head__w"], ["head__xw"]),
        helper.make_node("Add", ["head__xw", "head__b"], ["embedding"]),
    ])
    out = helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["batch", int(weight.shape[0])])
    del g.output[:]
    g.output.extend([out])
    return model.SerializeToString()


def write_pack_head_model(pack: ModelPack, weight: np.ndarray, bias: np.ndarray, path: Path) -> Path:
    """The installed, checksum-checked pack plus the head, written to ``path`` (outside the repository)."""
    trunk = arcface_graph(Path(pack_path(pack)).read_bytes())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph_with_linear_head(trunk, weight, bias))
    return path
