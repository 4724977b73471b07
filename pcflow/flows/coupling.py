"""Coupling layers: the additive (NICE) and the affine (RealNVP) coupling on a boolean mask."""

from __future__ import annotations

import torch
from torch import nn

from .networks import mlp, run_mlp


class _Coupling(nn.Module):
    """What every coupling holds: its mask as a boolean buffer, and the columns it keeps and changes.

    Args:
        mask: (D,) bool tensor, True = passed through and conditioned on.
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.clone().bool())
        # index buffers (outside the state dict): index_select and index_copy on them move the same values as
        # indexing with the boolean mask, without working the mask out
        self.register_buffer("_kept", self.mask.nonzero().flatten(), persistent=False)
        self.register_buffer("_changed", (~self.mask).nonzero().flatten(), persistent=False)
        self.n_kept = int(self.mask.sum())
        self.n_changed = self.mask.numel() - self.n_kept


class AdditiveCoupling(_Coupling):
    """NICE coupling: y_a = x_a, y_b = x_b + t(x_a). Volume preserving (log-det 0).

    Args:
        mask: (D,) bool tensor, True = passed through and conditioned on.
        hidden_features: width of the network's hidden layers.
        n_hidden_layers: number of hidden layers of the network.
    """

    constant_jacobian = True

    def __init__(self, mask: torch.Tensor, hidden_features: int = 64, n_hidden_layers: int = 2):
        super().__init__(mask)
        self.net = mlp(self.n_kept, self.n_changed, hidden_features, n_hidden_layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift = run_mlp(self.net, x.index_select(1, self._kept))
        return x.index_copy(1, self._changed, x.index_select(1, self._changed) + shift), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        shift = run_mlp(self.net, y.index_select(1, self._kept))
        return y.index_copy(1, self._changed, y.index_select(1, self._changed) - shift)

    def inverse_and_log_det(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inverse(y), y.new_zeros(y.shape[0])

    def log_det_constant(self) -> torch.Tensor:
        """log|det| of the layer, 0 at every point: a 0-dim tensor of the network's dtype and device."""
        return self.net[-1].bias.new_zeros(())


class AffineCoupling(_Coupling):
    """RealNVP coupling: y_a = x_a, y_b = x_b * exp(s(x_a)) + t(x_a), with s bounded by `max_log_scale` * tanh.

    Args:
        mask: (D,) bool tensor, True = passed through and conditioned on.
        hidden_features: width of the network's hidden layers.
        n_hidden_layers: number of hidden layers of the network.
        max_log_scale: bound on |s|.
    """

    constant_jacobian = False

    def __init__(
        self,
        mask: torch.Tensor,
        hidden_features: int = 64,
        n_hidden_layers: int = 2,
        max_log_scale: float = 2.0,
    ):
        super().__init__(mask)
        self.max_log_scale = float(max_log_scale)
        self.net = mlp(self.n_kept, 2 * self.n_changed, hidden_features, n_hidden_layers)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_scale, shift = run_mlp(self.net, kept).split(self.n_changed, dim=1)
        return self.max_log_scale * torch.tanh(raw_scale / self.max_log_scale), shift

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_scale, shift = self._scale_shift(x.index_select(1, self._kept))
        changed = x.index_select(1, self._changed) * torch.exp(log_scale) + shift
        return x.index_copy(1, self._changed, changed), log_scale.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._inverse(y)[0]

    def inverse_and_log_det(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, log_scale = self._inverse(y)
        return x, log_scale.sum(dim=1)

    def _inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_scale, shift = self._scale_shift(y.index_select(1, self._kept))  # x's kept columns are y's
        changed = (y.index_select(1, self._changed) - shift) * torch.exp(-log_scale)
        return y.index_copy(1, self._changed, changed), log_scale
