"""A small from-scratch CNN (about 0.7 M parameters) for quick triplet-training experiments on CPU.

Same interface as :class:`~training.models.sface_torch.SFaceNet`: float NCHW RGB 0..255 in,
raw embeddings out. Plain conv/BN/ReLU stages, global average pooling, a linear projection.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyCNN(nn.Module):
    def __init__(self, embedding_dim: int = 128, widths: tuple[int, ...] = (24, 48, 96, 192)):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.input_size = 112
        chans = (3, *widths)
        self.body = nn.Sequential(
            OrderedDict((f"stage{i + 1}", _stage(chans[i], chans[i + 1])) for i in range(len(widths)))
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], embedding_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        # Work at 56x56: a quarter of the cost, and plenty for a from-scratch CPU experiment.
        return F.avg_pool2d((x - 127.5) * (1.0 / 128.0), 2)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.preprocess(x)))

    def stages(self) -> list[tuple[str, list[nn.Module]]]:
        return [(n, [m]) for n, m in self.body.named_children()] + [("head", [self.fc])]
