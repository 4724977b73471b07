"""Invertible layers (additive and affine couplings, diagonal scaling) and the flow that composes them."""

from .coupling import AdditiveCoupling, AffineCoupling
from .flow import Flow, build_flow
from .masks import coupling_masks
from .networks import mlp
from .scaling import DiagonalScaling

__all__ = ["AdditiveCoupling", "AffineCoupling", "DiagonalScaling", "Flow", "build_flow", "coupling_masks", "mlp"]
