"""The flow: a composition of invertible layers, and the standard stack of couplings and a diagonal scaling."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import PcflowError
from .coupling import AdditiveCoupling
from .masks import coupling_masks
from .scaling import DiagonalScaling


class Flow(nn.Module):
    """Composition of invertible layers: f = layer_n o ... o layer_1.

    Args:
        layers: invertible modules, each with `forward(x) -> (y, logdet)`, `inverse(y) -> x` and
            `inverse_and_log_det(y) -> (x, logdet)` (logdet that of the forward map at x), a `constant_jacobian`
            flag and, where it is True, `log_det_constant() -> 0-dim tensor`.

    Example:
        >>> flow = build_flow(3, coupling=AdditiveCoupling, n_couplings=4)
        >>> x = torch.randn(5, 3)
        >>> z, logdet = flow(x)
        >>> torch.allclose(flow.inverse(z), x)
        True
    """

    def __init__(self, layers: Sequence[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @property
    def constant_jacobian(self) -> bool:
        """True when log|det df/dx| does not depend on x (then `log_det_constant` gives it)."""
        return all(layer.constant_jacobian for layer in self.layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps x: (N, D) to z: (N, D) and returns (z, log|det df/dx|: (N,))."""
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_logdet = layer(x)
            logdet = logdet + layer_logdet
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Maps latent z: (N, D) back to x: (N, D)."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def inverse_and_log_det(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps latent z: (N, D) back to x: (N, D) and returns (x, log|det df/dx| at x: (N,)), the log-det of the
        forward map, which the inverse pass works out on the way (each coupling's scale at x is its scale at z's
        kept columns), so that no forward pass from x is needed."""
        logdet = z.new_zeros(z.shape[0])
        for layer in reversed(self.layers):
            z, layer_logdet = layer.inverse_and_log_det(z)
            logdet = logdet + layer_logdet
        return z, logdet

    def log_det_constant(self) -> torch.Tensor:
        """log|det df/dx| of a constant-Jacobian flow, as a 0-dim tensor with gradient."""
        if not self.constant_jacobian:
            raise PcflowError("log_det_constant is defined only for constant-Jacobian flows")
        total = None
        for layer in self.layers:
            part = layer.log_det_constant()
            total = part if total is None else total + part
        if total is None:
            return torch.zeros(())
        return total


def build_flow(
    dim: int,
    *,
    coupling: type[nn.Module] = AdditiveCoupling,
    n_couplings: int = 6,
    hidden_features: int = 64,
    n_hidden_layers: int = 2,
) -> Flow:
    """A stack of `n_couplings` couplings of one type on rotating masks, followed by a diagonal scaling.

    Args:
        dim: data dimension D >= 2.
        coupling: `AdditiveCoupling` (NICE, constant Jacobian) or `AffineCoupling` (general flow).
        n_couplings: number of coupling layers, at least 1.
        hidden_features: width of each coupling network's hidden layers.
        n_hidden_layers: number of hidden layers per coupling network.
    """
    if n_couplings < 1:
        raise PcflowError(f"n_couplings must be at least 1, got {n_couplings}")
    if hidden_features < 1 or n_hidden_layers < 0:
        raise PcflowError(
            f"hidden_features must be >= 1 and n_hidden_layers >= 0, got {hidden_features} and {n_hidden_layers}"
        )
    layers: list[nn.Module] = [
        coupling(mask, hidden_features, n_hidden_layers) for mask in coupling_masks(dim, n_couplings)
    ]
    layers.append(DiagonalScaling(dim))
    return Flow(layers)
