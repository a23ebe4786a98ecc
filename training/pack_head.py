"""A new embedding head on a pack model's trunk, as an ONNX file for the engine (no torch needed).

``arcface-mbf-h128`` is the arcface-mbf network (its 512-D output, L2-normalised) followed by a linear
layer to 128-D (optionally with a residual hidden layer, and the trunk's last layer retrained), trained
with the harmonic triplet loss against SFace's embeddings (bench/harmonic_mbf_head.py,
bench/mbf_head_variants.py), so its faces are comparable with a library embedded by SFace. The weights of
the head are derived from non-commercial weights and research data: the file is built on the user's
machine and registered into their library (``Library.register_model``), never shipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.models.packs import ModelPack, pack_path
from engine.models.registry import arcface_graph


def graph_with_linear_head(trunk_bytes: bytes, weight: np.ndarray, bias: np.ndarray,
                           hidden: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                           fc: tuple[np.ndarray, np.ndarray] | None = None) -> bytes:
    """``trunk_bytes`` (an engine-layout graph: 0..255 RGB ``data`` in, one (N, D) output) followed by
    L2 normalisation and ``y = x @ weight.T + bias``: (N, D) -> (N, out).

    ``hidden = (w1, b1, w2)`` adds a residual branch ``relu(x @ w1.T + b1) @ w2.T`` to ``y`` (the
    non-linear head of bench/mbf_head_variants.py). ``fc = (w, b)`` replaces the trunk's last layer, a
    Gemm followed by a BatchNormalization (ArcFace's ``fc`` + ``features``), by the retrained Gemm with the
    BatchNorm folded into it (the BatchNorm is made the identity)."""
    import onnx
    from onnx import helper, numpy_helper

    weight = np.asarray(weight, np.float32)
    bias = np.asarray(bias, np.float32)
    model = onnx.load_from_string(trunk_bytes)
    g = model.graph
    trunk_out = g.output[0].name
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(f"head weight {weight.shape} and bias {bias.shape} do not match")
    if fc is not None:
        _replace_last_layer(g, np.asarray(fc[0], np.float32), np.asarray(fc[1], np.float32))
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
        helper.make_node("Add", ["head__xw", "head__b"], ["head__linear" if hidden is not None else "embedding"]),
    ])
    if hidden is not None:
        w1, b1, w2 = (np.asarray(a, np.float32) for a in hidden)
        if w1.shape[1] != weight.shape[1] or b1.shape != (w1.shape[0],) or w2.shape != (weight.shape[0], w1.shape[0]):
            raise ValueError(f"hidden layer shapes {w1.shape}, {b1.shape}, {w2.shape} do not fit the head")
        g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(w1.T), "head__w1"),
                              numpy_helper.from_array(b1, "head__b1"),
                              numpy_helper.from_array(np.ascontiguousarray(w2.T), "head__w2")])
        g.node.extend([
            helper.make_node("MatMul", ["head__unit", "head__w1"], ["head__h0"]),
            helper.make_node("Add", ["head__h0", "head__b1"], ["head__h1"]),
            helper.make_node("Relu", ["head__h1"], ["head__h2"]),
            helper.make_node("MatMul", ["head__h2", "head__w2"], ["head__res"]),
            helper.make_node("Add", ["head__linear", "head__res"], ["embedding"]),
        ])
    out = helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["batch", int(weight.shape[0])])
    del g.output[:]
    g.output.extend([out])
    return model.SerializeToString()


def folded_last_layer(trunk_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The trunk's last layer (Gemm + BatchNormalization) as one affine map ``(w, b)``: the start of a
    retrained last layer, and what ``fc=`` takes."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load_from_string(trunk_bytes).graph
    gemm, bn = g.node[-2], g.node[-1]
    if (gemm.op_type, bn.op_type) != ("Gemm", "BatchNormalization"):
        raise ValueError(f"the trunk does not end in Gemm + BatchNormalization ({gemm.op_type}, {bn.op_type})")
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
    gamma, beta, mean, var = (init[n].astype(np.float64) for n in bn.input[1:])
    s = gamma / np.sqrt(var + eps)
    w = init[gemm.input[1]].astype(np.float64) * s[:, None]
    b = (init[gemm.input[2]] - mean) * s + beta
    return w.astype(np.float32), b.astype(np.float32)


def _replace_last_layer(g, w: np.ndarray, b: np.ndarray) -> None:
    from onnx import numpy_helper

    gemm, bn = g.node[-2], g.node[-1]
    if (gemm.op_type, bn.op_type) != ("Gemm", "BatchNormalization"):
        raise ValueError(f"the trunk does not end in Gemm + BatchNormalization ({gemm.op_type}, {bn.op_type})")
    inits = {i.name: i for i in g.initializer}
    old = numpy_helper.to_array(inits[gemm.input[1]])
    if old.shape != w.shape or b.shape != (w.shape[0],):
        raise ValueError(f"new last layer {w.shape} does not replace the trunk's {old.shape}")
    eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
    n = w.shape[0]
    values = {gemm.input[1]: w, gemm.input[2]: b, bn.input[1]: np.ones(n, np.float32),
              bn.input[2]: np.zeros(n, np.float32), bn.input[3]: np.zeros(n, np.float32),
              bn.input[4]: np.full(n, 1.0 - eps, np.float32)}  # (x - 0) / sqrt(1 - eps + eps) = x
    for name, value in values.items():
        inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))


def write_pack_head_model(pack: ModelPack, weight: np.ndarray, bias: np.ndarray, path: Path,
                          hidden: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                          fc: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """The installed, checksum-checked pack plus the head, written to ``path`` (outside the repository)."""
    trunk = arcface_graph(Path(pack_path(pack)).read_bytes())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph_with_linear_head(trunk, weight, bias, hidden=hidden, fc=fc))
    return path
