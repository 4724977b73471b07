"""Boolean coupling masks that rotate over the coordinates."""

from __future__ import annotations

import torch

from ..errors import PcflowError


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
