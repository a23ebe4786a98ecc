"""SFace (MobileFaceNet-style, 2021dec) as a torch module, with weights read from the ONNX graph.

The bundled int8 block-quantised graph is first folded to plain fp32 by
:func:`engine.models.registry.folded_model_bytes`; what remains is a straight chain::

    (x - 127.5) * 0.0078125
    -> 27 x [Conv (no bias) -> BatchNorm(eps 1e-3) -> PRelu]   # conv_1, conv_2_dw, conv_2, ... conv_14
    -> BatchNorm(bn1, eps 2e-5) -> Dropout(0.4) -> Flatten -> Gemm(50176 -> 128) -> BatchNorm(fc1)

There are no residual additions. The layer list is not hard-coded: :func:`arch_from_onnx` reads it
off the graph (and refuses a graph of any other shape), so the port follows the file it is given.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

INPUT_SIZE = 112


@dataclass(frozen=True)
class ConvSpec:
    name: str  # e.g. "conv_3_dw"
    cin: int
    cout: int
    kernel: int
    stride: int
    padding: int
    groups: int
    bn_eps: float = 1e-3


@dataclass(frozen=True)
class SFaceArch:
    convs: tuple[ConvSpec, ...]
    feature_size: int = 7  # spatial size after the body
    embedding_dim: int = 128
    head_bn_eps: float = 2e-5
    fc_bn_eps: float = 2e-5
    dropout: float = 0.4
    input_mean: float = 127.5
    input_scale: float = 0.0078125


def _default_arch() -> SFaceArch:
    # (out channels, stride of the depthwise conv) for blocks conv_2 .. conv_14.
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    blocks += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    convs = [ConvSpec("conv_1", 3, 32, 3, 1, 1, 1)]
    c = 32
    for i, (cout, stride) in enumerate(blocks, start=2):
        convs.append(ConvSpec(f"conv_{i}_dw", c, c, 3, stride, 1, c))
        convs.append(ConvSpec(f"conv_{i}", c, cout, 1, 1, 0, 1))
        c = cout
    return SFaceArch(tuple(convs))


SFACE_ARCH = _default_arch()


class ConvBNPReLU(nn.Module):
    def __init__(self, spec: ConvSpec):
        super().__init__()
        self.conv = nn.Conv2d(
            spec.cin, spec.cout, spec.kernel, spec.stride, spec.padding, groups=spec.groups, bias=False
        )
        # ONNX/MXNet momentum 0.9 (weight of the old running value) is torch momentum 0.1.
        self.bn = nn.BatchNorm2d(spec.cout, eps=spec.bn_eps, momentum=0.1)
        self.act = nn.PReLU(spec.cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SFaceNet(nn.Module):
    """Input: (N, 3, 112, 112) float RGB in 0..255. Output: (N, 128) raw embeddings (normalise them)."""

    def __init__(self, arch: SFaceArch = SFACE_ARCH):
        super().__init__()
        self.arch = arch
        self.register_buffer("input_mean", torch.tensor(arch.input_mean, dtype=torch.float32))
        self.register_buffer("input_scale", torch.tensor(arch.input_scale, dtype=torch.float32))
        self.body = nn.Sequential(OrderedDict((s.name, ConvBNPReLU(s)) for s in arch.convs))
        c = arch.convs[-1].cout
        self.bn1 = nn.BatchNorm2d(c, eps=arch.head_bn_eps, momentum=0.1)
        self.dropout = nn.Dropout(arch.dropout)
        self.fc = nn.Linear(c * arch.feature_size**2, arch.embedding_dim)
        self.fc_bn = nn.BatchNorm1d(arch.embedding_dim, eps=arch.fc_bn_eps, momentum=0.1)
        self.embedding_dim = arch.embedding_dim
        self.input_size = INPUT_SIZE

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) * self.input_scale

    def head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.bn1(x))
        return self.fc_bn(self.fc(torch.flatten(x, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.preprocess(x)))

    def stages(self) -> list[tuple[str, list[nn.Module]]]:
        """Trainable groups, input to output: conv_1, conv_2 (its dw + pw convs), ..., conv_14, head."""
        groups: OrderedDict[str, list[nn.Module]] = OrderedDict()
        for name, mod in self.body.named_children():
            groups.setdefault(name.removesuffix("_dw"), []).append(mod)
        out = list(groups.items())
        out.append(("head", [self.bn1, self.fc, self.fc_bn]))
        return out


# ---------------------------------------------------------------------------------------------
# Reading the ONNX graph


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _parse(model_bytes: bytes):
    """Walk the folded graph; return (arch, state_dict). Raises ValueError on an unexpected graph."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load_from_string(model_bytes).graph
    except Exception as exc:  # protobuf raises several types
        raise ValueError(f"not an ONNX graph: {exc}") from exc
    init = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type != "Constant"]
    sd: dict[str, torch.Tensor] = {}
    convs: list[ConvSpec] = []
    t = torch.from_numpy
    i = 0

    def expect(op: str):
        nonlocal i
        if i >= len(nodes) or nodes[i].op_type != op:
            got = nodes[i].op_type if i < len(nodes) else "end of graph"
            raise ValueError(f"unexpected SFace graph: expected {op} at node {i}, got {got}")
        i += 1
        return nodes[i - 1]

    def bn(node, prefix: str) -> float:
        g, b, m, v = (init[n] for n in node.input[1:5])
        sd.update({f"{prefix}.weight": t(g), f"{prefix}.bias": t(b), f"{prefix}.running_mean": t(m)})
        sd[f"{prefix}.running_var"] = t(v)
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
        return round(float(_attrs(node).get("epsilon", 1e-5)), 8)

    sub, mul = expect("Sub"), expect("Mul")
    mean, scale = float(init[sub.input[1]].ravel()[0]), float(init[mul.input[1]].ravel()[0])
    while i < len(nodes) and nodes[i].op_type == "Conv":
        conv = expect("Conv")
        a = _attrs(conv)
        w = init[conv.input[1]]
        if len(conv.input) > 2 and conv.input[2]:
            raise ValueError("unexpected SFace graph: conv with bias")
        k, stride, pads = a["kernel_shape"], a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])
        if len(set(k)) != 1 or len(set(stride)) != 1 or len(set(pads)) != 1:
            raise ValueError("unexpected SFace graph: non-square conv")
        groups = int(a.get("group", 1))
        name = conv.output[0].removesuffix("_conv2d")
        bn_node = expect("BatchNormalization")
        prelu = expect("PRelu")
        base = f"body.{name}"
        sd[f"{base}.conv.weight"] = t(w)
        eps = bn(bn_node, f"{base}.bn")
        sd[f"{base}.act.weight"] = t(init[prelu.input[1]].reshape(-1))
        convs.append(ConvSpec(name, w.shape[1] * groups, w.shape[0], k[0], stride[0], pads[0], groups, eps))
    head_eps = bn(expect("BatchNormalization"), "bn1")
    if i < len(nodes) and nodes[i].op_type == "Dropout":
        i += 1
    expect("Flatten")
    gemm = expect("Gemm")
    ga = _attrs(gemm)
    fw, fb = init[gemm.input[1]], init[gemm.input[2]]
    if ga.get("transB", 0) != 1:
        fw = fw.T
    sd["fc.weight"], sd["fc.bias"] = t(np.ascontiguousarray(fw)), t(fb)
    fc_eps = bn(expect("BatchNormalization"), "fc_bn")
    if i != len(nodes):
        raise ValueError(f"unexpected SFace graph: {len(nodes) - i} trailing nodes")
    feat = int(round((fw.shape[1] / convs[-1].cout) ** 0.5))
    arch = SFaceArch(tuple(convs), feat, fw.shape[0], head_eps, fc_eps, 0.4, mean, scale)
    sd["input_mean"] = torch.tensor(mean, dtype=torch.float32)
    sd["input_scale"] = torch.tensor(scale, dtype=torch.float32)
    return arch, sd


def arch_from_onnx(model_bytes: bytes) -> SFaceArch:
    return _parse(model_bytes)[0]


def load_sface(path: Path | None = None, model_bytes: bytes | None = None) -> SFaceNet:
    """SFaceNet with the bundled (checksum-verified) weights, or those of ``path``/``model_bytes``.

    ``path``/``model_bytes`` must have the bundled graph's layout (unfused Conv -> BatchNormalization
    -> PRelu chain; int8 DequantizeLinear weights are folded first). Files written by
    :func:`training.export.export_onnx` have BatchNorm fused into the convs: load those checkpoints
    with :func:`training.train.load_checkpoint` instead. The bundled file is checksum-verified.
    """
    if model_bytes is None:
        if path is None:
            from engine.models.registry import SFACE, folded_model_bytes

            model_bytes = folded_model_bytes(SFACE)
        else:
            from engine.models.registry import fold_constants

            model_bytes = fold_constants(Path(path).read_bytes())
    arch, sd = _parse(model_bytes)
    model = SFaceNet(arch)
    model.load_state_dict(sd, strict=True)
    return model.eval()
