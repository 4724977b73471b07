"""Tests for pcflow.meshing.checks: the validity report."""

import pytest
import trimesh

from pcflow.meshing import validity

from meshing_stand_ins import assert_valid


def test_validity_flags_open_inverted_split_and_miswound_meshes():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    assert_valid(sphere)

    opened = trimesh.Trimesh(sphere.vertices, sphere.faces[1:], process=False)
    report = validity(opened)
    assert not report["watertight"] and report["genus"] is None and report["euler"] == 1

    inverted = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1], process=False)
    report = validity(inverted)
    assert report["watertight"] and report["winding_consistent"] and not report["positive_volume"]
    assert report["volume"] == pytest.approx(-sphere.volume)

    miswound = sphere.faces.copy()
    miswound[0] = miswound[0, ::-1]
    assert not validity(trimesh.Trimesh(sphere.vertices, miswound, process=False))["winding_consistent"]

    pair = trimesh.util.concatenate([sphere, sphere.copy().apply_translation([5.0, 0.0, 0.0])])
    report = validity(pair)
    assert report["n_components"] == 2 and report["genus"] is None and report["euler"] == 4


def test_validity_genus_of_a_torus():
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3)
    report = validity(torus)
    assert report["watertight"] and report["n_components"] == 1
    assert report["euler"] == 0 and report["genus"] == 1
    assert report["self_intersections"] == 0
    assert report["n_vertices"] == len(torus.vertices) and report["n_faces"] == len(torus.faces)


def test_winding_catches_a_repeated_directed_edge_that_trimesh_skips():
    """Three faces on one edge, two of them running it the same way: not consistently wound. trimesh's check
    looks at edges of exactly two faces only, which is why validity keeps its own."""
    vertices = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]]
    fan = trimesh.Trimesh(vertices, [[0, 1, 2], [1, 0, 3], [0, 1, 4]], process=False)
    assert fan.is_winding_consistent and not validity(fan)["winding_consistent"]
    assert validity(fan)["watertight"] == fan.is_watertight is False


def test_watertight_and_euler_agree_with_trimesh():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3)
    opened = trimesh.Trimesh(sphere.vertices, sphere.faces[3:], process=False)
    for mesh in (sphere, torus, opened):
        report = validity(mesh, check_intersections=False)
        assert report["watertight"] == mesh.is_watertight and report["euler"] == mesh.euler_number
        if mesh.is_watertight:  # an open mesh's signed volume depends on the origin, taken at the centroid here
            assert report["volume"] == pytest.approx(mesh.volume, rel=1e-12)
