"""Invertible layers (additive and affine couplings, diagonal scaling) and the flow that composes them."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .errors import PcflowError


#: oneDNN's linear layer with a fused activation (what torch.compile's CPU backend calls): scoring runs a coupling
#: network's linear layers and their SiLUs as one operation each, one pass over the activations instead of two
_FUSED_LINEAR_SILU = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_linear_silu = torch.ops.mkldnn._linear_pointwise if _FUSED_LINEAR_SILU else None


def coupling_masks(dim: int, n_couplings: int) -> list[torch.Tensor]:
    """Boolean masks (True = passed through and conditioned on) for a stack of couplings in `dim` dimensions.

    The i-th mask keeps the floor(dim / 2) coordinates starting at position i (cyclically). For dim = 2 this is the
    usual alternation; for larger dim the window rotates, so that after `dim` couplings every coordinate has been
    updated and has conditioned the others.

    Example:
        >>> [m.int().tolist() for m in coupling_masks(3, 3)]
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    """
    if dim < 2:
        raise PcflowError(f"a coupling flow needs at least 2 dimensions, got {dim}")
    positions = torch.arange(dim)
    return [((positions + i) % dim) < dim // 2 for i in range(n_couplings)]


def mlp(in_features: int, out_features: int, hidden_features: int, n_hidden_layers: int) -> nn.Sequential:
    """Multilayer perceptron with SiLU activations whose last layer starts at zero (so the coupling is the identity)."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(n_hidden_layers):
        layers += [nn.Linear(width, hidden_features), nn.SiLU()]
        width = hidden_features
    last = nn.Linear(width, out_features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


def _run_mlp(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """net(x). Without gradient, on float32 CPU tensors, each linear layer runs fused with the SiLU after it, one pass
    over the activations instead of two (the same values to float32 rounding, about a fifth less time)."""
    if not (_FUSED_LINEAR_SILU and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()):
        return net(x)
    layers = list(net)
    i = 0
    while i < len(layers):
        if isinstance(layers[i], nn.Linear) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.SiLU):
            x = _linear_silu(x, layers[i].weight, layers[i].bias, "swish", [], "")
            i += 2
        else:
            x = layers[i](x)
            i += 1
    return x


def _register_indices(coupling: nn.Module) -> None:
    """The columns a coupling keeps and changes, as index buffers (outside the state dict): index_select and
    index_copy on them move the same values as indexing with the boolean mask, without working the mask out."""
    coupling.register_buffer("_kept", coupling.mask.nonzero().flatten(), persistent=False)
    coupling.register_buffer("_changed", (~coupling.mask).nonzero().flatten(), persistent=False)


class AdditiveCoupling(nn.Module):
    """NICE coupling: y_a = x_a, y_b = x_b + t(x_a). Volume preserving (log-det 0)."""

    constant_jacobian = True

    def __init__(self, mask: torch.Tensor, hidden_features: int = 64, n_hidden_layers: int = 2):
        super().__init__()
        self.register_buffer("mask", mask.clone().bool())
        _register_indices(self)
        n_kept = int(self.mask.sum())
        self.net = mlp(n_kept, mask.numel() - n_kept, hidden_features, n_hidden_layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift = _run_mlp(self.net, x.index_select(1, self._kept))
        return x.index_copy(1, self._changed, x.index_select(1, self._changed) + shift), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        shift = _run_mlp(self.net, y.index_select(1, self._kept))
        return y.index_copy(1, self._changed, y.index_select(1, self._changed) - shift)

    def inverse_and_log_det(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inverse(y), y.new_zeros(y.shape[0])


class AffineCoupling(nn.Module):
    """RealNVP coupling: y_a = x_a, y_b = x_b * exp(s(x_a)) + t(x_a), with s bounded by `max_log_scale` * tanh."""

    constant_jacobian = False

    def __init__(
        self,
        mask: torch.Tensor,
        hidden_features: int = 64,
        n_hidden_layers: int = 2,
        max_log_scale: float = 2.0,
    ):
        super().__init__()
        self.register_buffer("mask", mask.clone().bool())
        _register_indices(self)
        n_kept = int(self.mask.sum())
        self.n_changed = mask.numel() - n_kept
        self.max_log_scale = float(max_log_scale)
        self.net = mlp(n_kept, 2 * self.n_changed, hidden_features, n_hidden_layers)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_scale, shift = _run_mlp(self.net, kept).split(self.n_changed, dim=1)
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


class DiagonalScaling(nn.Module):
    """y = x * exp(log_scale), one learned scale per coordinate (NICE's final layer)."""

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


class Flow(nn.Module):
    """Composition of invertible layers: f = layer_n o ... o layer_1.

    Args:
        layers: invertible modules, each with `forward(x) -> (y, logdet)`, `inverse(y) -> x` and
            `inverse_and_log_det(y) -> (x, logdet)` (logdet that of the forward map at x).

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
            if isinstance(layer, DiagonalScaling):
                part = layer.log_scale.sum()
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
