"""Stand-ins the meshing tests share: analytic latent-to-input maps, a model around them, a validity check."""

import numpy as np
from scipy.spatial.transform import Rotation

from pcflow.meshing import validity

BALL = 4.0 / 3.0 * np.pi


def anisotropic_matrix(det_sign=1.0):
    """A linear map with singular values 1, 0.5, 0.2 in general directions."""
    u = Rotation.from_euler("xyz", [0.3, 0.7, -0.4]).as_matrix()
    v = Rotation.from_euler("xyz", [-1.1, 0.2, 0.5]).as_matrix()
    return u @ np.diag([1.0, 0.5, det_sign * 0.2]) @ v


def shear(z):
    """Volume-preserving triangular map (x, y + g(x), w + h(x, y)): det 1, a stand-in for NICE."""
    x, y, w = z.T
    y = y + 0.8 * np.sin(1.5 * x)
    w = w + 0.5 * np.cos(x + y) + 0.3 * x * y
    return np.column_stack([x, y, w])


def unshear(p):
    x, y, w = p.T
    w = w - 0.5 * np.cos(x + y) - 0.3 * x * y
    y = y - 0.8 * np.sin(1.5 * x)
    return np.column_stack([x, y, w])


class StandInModel:
    """What the mesh code needs of a fitted OneFlow: an explicit bijection and a latent radius.

    The latent-to-input map is x = scale * g(z) + shift with g the identity, a matrix, or `shear`.
    """

    n_features_in_ = 3

    def __init__(self, kind="affine", matrix=None, scale=1.0, shift=(0.0, 0.0, 0.0), radius=1.0):
        self.kind = kind
        self.matrix = np.eye(3) if matrix is None else np.asarray(matrix, dtype=float)
        self.scale = float(scale)
        self.shift = np.asarray(shift, dtype=float)
        self.radius_ = float(radius)

    def inverse_transform(self, z):
        z = np.asarray(z, dtype=float)
        g = shear(z) if self.kind == "shear" else z @ self.matrix.T
        return self.scale * g + self.shift

    def transform(self, x):
        p = (np.asarray(x, dtype=float) - self.shift) / self.scale
        return unshear(p) if self.kind == "shear" else np.linalg.solve(self.matrix, p.T).T

    def radius_at(self, coverage):
        return self.radius_ * coverage ** (1.0 / 3.0)

    def decision_function(self, x):
        return self.radius_ - np.linalg.norm(self.transform(x), axis=1)

    @property
    def volume_(self):
        return abs(np.linalg.det(self.matrix)) * self.scale**3 * BALL * self.radius_**3


def assert_valid(mesh):
    report = validity(mesh)
    assert report["watertight"]
    assert report["winding_consistent"]
    assert report["positive_volume"]
    assert report["n_components"] == 1
    assert report["euler"] == 2 and report["genus"] == 0
    assert report["self_intersections"] == 0
    return report


def unit_directions(n, seed=0):
    directions = np.random.default_rng(seed).normal(size=(n, 3))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)
