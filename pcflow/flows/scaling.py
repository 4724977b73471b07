"""Diagonal scaling, NICE's final layer: one learned scale per coordinate."""

from __future__ import annotations

import torch
from torch import nn


class DiagonalScaling(nn.Module):
    """y = x * exp(log_scale), one learned scale per coordinate (NICE's final layer).

    Args:
        dim: data dimension D.
    """

    constant_jacobian = True

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale)

    def inverse_and_log_det(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inverse(y), self.log_scale.sum().expand(y.shape[0])

    def log_det_constant(self) -> torch.Tensor:
        """log|det| of the layer, the same at every point: sum(log_scale), a 0-dim tensor with gradient."""
        return self.log_scale.sum()
