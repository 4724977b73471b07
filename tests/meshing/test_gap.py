"""Tests for pcflow.meshing.gap: the share of a surface far from every point."""

import numpy as np
import pytest
import trimesh

from pcflow.meshing import unsupported_share


def test_unsupported_share_matches_brute_force_distances():
    rng = np.random.default_rng(0)
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    points = rng.uniform(-1.0, 1.0, size=(40, 3)) * [1.0, 0.5, 0.25]
    samples, _ = trimesh.sample.sample_surface(box, 50_000, seed=np.random.default_rng(1))
    nearest = np.sqrt(((samples[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    for distance in (0.1, 0.3, 0.6):
        reference = float(np.mean(nearest > distance))
        assert unsupported_share(box, points, distance, n_samples=20_000) == pytest.approx(reference, abs=0.015)


def test_unsupported_share_of_fully_and_half_covered_spheres():
    sphere = trimesh.creation.icosphere(subdivisions=5)
    assert unsupported_share(sphere, sphere.vertices, 0.05) == 0.0
    assert unsupported_share(sphere, sphere.vertices[sphere.vertices[:, 2] > 0], 0.05) == pytest.approx(0.5, abs=0.04)
