"""Scorer heads that turn one normalised (Ni, Lt) similarity map into a scalar score.

- ``MapCNN`` is the reference ``CrossModalConvNetwork`` (docs/methods/dcsm.md 1.4): two 3x3 convs with 4
  channels, ReLU and Dropout2d, then a position-specific fully connected head (flatten,
  Linear 128, ReLU, Dropout, Linear 1, Dropout on the logit). Its input size fixes (Ni, Lt),
  so it only fits the backbone and context length it was built for.
- ``PooledMapCNN`` is the same convs followed by adaptive average pooling to a fixed grid, so
  one head accepts maps of any size (other backbones, resolutions, context lengths) while the
  pooled grid still keeps coarse token and patch positions.
- ``MapMLP`` is the paper's NAIVE-MLP ablation: the flattened map straight into the same
  fully connected head, no convolutions, so it shows what the convs' local filters add.
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = ("cnn", "pooled", "mlp")


def _convs(channels: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.Dropout2d(dropout),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(),
        nn.Dropout2d(dropout),
    )


def _classifier(features: int, hidden: int, dropout: float, logit_dropout: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, 1),
        nn.Dropout(dropout) if logit_dropout else nn.Identity(),
    )


class MapCNN(nn.Module):
    """Reference head: convs + flatten + MLP over a (Ni, Lt) map; input size is fixed."""

    def __init__(
        self,
        map_size: tuple[int, int],
        channels: int = 4,
        hidden: int = 128,
        dropout: float = 0.1,
        logit_dropout: bool = True,
    ) -> None:
        super().__init__()
        self.map_size = tuple(map_size)
        self.convs = _convs(channels, dropout)
        self.classifier = _classifier(
            channels * self.map_size[0] * self.map_size[1], hidden, dropout, logit_dropout
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """(P, Ni, Lt) maps -> (P,) scores."""
        if tuple(maps.shape[-2:]) != self.map_size:
            raise ValueError(
                f"MapCNN built for {self.map_size} maps, got {tuple(maps.shape[-2:])}; "
                "use head='pooled' for other backbones or context lengths"
            )
        return self.classifier(self.convs(maps[:, None])).squeeze(-1)


class PooledMapCNN(nn.Module):
    """Size-independent head: convs + adaptive average pooling to ``pool`` + MLP."""

    def __init__(
        self,
        pool: tuple[int, int] = (16, 16),
        channels: int = 4,
        hidden: int = 128,
        dropout: float = 0.1,
        logit_dropout: bool = True,
    ) -> None:
        super().__init__()
        self.convs = _convs(channels, dropout)
        self.pool = nn.AdaptiveAvgPool2d(tuple(pool))
        self.classifier = _classifier(channels * pool[0] * pool[1], hidden, dropout, logit_dropout)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """(P, H, W) maps of any size -> (P,) scores."""
        return self.classifier(self.pool(self.convs(maps[:, None]))).squeeze(-1)


class MapMLP(nn.Module):
    """NAIVE-MLP ablation: flatten + MLP over a (Ni, Lt) map; input size is fixed."""

    def __init__(
        self,
        map_size: tuple[int, int],
        hidden: int = 128,
        dropout: float = 0.1,
        logit_dropout: bool = True,
    ) -> None:
        super().__init__()
        self.map_size = tuple(map_size)
        self.classifier = _classifier(
            self.map_size[0] * self.map_size[1], hidden, dropout, logit_dropout
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """(P, Ni, Lt) maps -> (P,) scores."""
        if tuple(maps.shape[-2:]) != self.map_size:
            raise ValueError(f"MapMLP built for {self.map_size} maps, got {tuple(maps.shape[-2:])}")
        return self.classifier(maps).squeeze(-1)


def build_head(
    kind: str,
    map_size: tuple[int, int],
    pool: tuple[int, int],
    channels: int,
    hidden: int,
    dropout: float,
    logit_dropout: bool,
) -> nn.Module:
    """The scorer head named ``kind`` ("cnn" reference, "pooled" any size, "mlp" ablation)."""
    if kind == "cnn":
        return MapCNN(map_size, channels, hidden, dropout, logit_dropout)
    if kind == "pooled":
        return PooledMapCNN(pool, channels, hidden, dropout, logit_dropout)
    if kind == "mlp":
        return MapMLP(map_size, hidden, dropout, logit_dropout)
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
