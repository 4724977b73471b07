"""Tests for pcflow.meshing.intersections: self-intersecting triangle pairs against a brute-force count."""

import itertools

import numpy as np
import pytest
import trimesh

from pcflow.meshing import count_self_intersections


def soup(*triangles):
    vertices = np.concatenate([np.asarray(t, dtype=float) for t in triangles])
    return trimesh.Trimesh(vertices, np.arange(len(vertices)).reshape(-1, 3), process=False)


BASE = [[0, 0, 0], [2, 0, 0], [0, 2, 0]]


@pytest.mark.parametrize(
    "other, expected",
    [
        ([[0.5, 0.5, -1], [0.5, 0.5, 1], [1.5, 0.2, 0.3]], 1),  # pierces the base
        ([[0, 0, 1], [2, 0, 1], [0, 2, 1]], 0),  # parallel, disjoint
        ([[5, 5, -1], [5, 5, 1], [6, 5, 0]], 0),  # far away
        ([[0.3, 0.3, 0], [3, 0.3, 0], [0.3, 3, 0]], 1),  # coplanar overlap
        ([[3, 3, 0], [4, 3, 0], [3, 4, 0]], 0),  # coplanar, disjoint
    ],
)
def test_count_hand_made_pairs(other, expected):
    assert count_self_intersections(soup(BASE, other)) == expected


def test_pairs_sharing_vertices_are_not_counted():
    # Two faces on one edge, folded so they pass near each other, and a coplanar neighbour.
    vertices = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [1, -2, 0], [0.5, 1.0, 0.1]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 3, 1], [0, 1, 4]])
    assert count_self_intersections(trimesh.Trimesh(vertices, faces, process=False)) == 0


def brute_force_count(triangles):
    """Slow reference: for each vertex-disjoint pair, solve each edge against the other plane."""
    count = 0
    for (i, s), (j, t) in itertools.combinations(enumerate(triangles), 2):
        found = False
        for edges_of, other in ((s, t), (t, s)):
            for p, q in ((edges_of[0], edges_of[1]), (edges_of[1], edges_of[2]), (edges_of[2], edges_of[0])):
                system = np.column_stack([q - p, -(other[1] - other[0]), -(other[2] - other[0])])
                along, u, v = np.linalg.solve(system, other[0] - p)
                if 0 < along < 1 and u > 0 and v > 0 and u + v < 1:
                    found = True
        count += found
    return count


def test_count_matches_brute_force_on_random_soup():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 3, size=(40, 1, 3))
    triangles = centres + rng.normal(scale=0.5, size=(40, 3, 3))
    expected = brute_force_count(triangles)
    assert expected > 5
    assert count_self_intersections(soup(*triangles)) == expected


@pytest.mark.parametrize("huge", [False, True])
def test_candidate_pairs_are_every_pair_of_overlapping_boxes(huge, monkeypatch):
    """The broad phase against all pairs of boxes, on a random soup of small triangles (the k-d tree of centres) and
    with one triangle across the whole soup (the R-tree it falls back to)."""
    import pcflow.meshing.intersections as intersections

    calls = []
    rtree_pairs = intersections._rtree_pairs
    monkeypatch.setattr(intersections, "_rtree_pairs", lambda *args: calls.append(1) or rtree_pairs(*args))
    monkeypatch.setattr(intersections, "_QUERY_PAIRS", 2_000)  # the R-tree's pairs in chunks of at most 2,000

    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 1, size=(300, 1, 3)) + rng.normal(scale=0.03, size=(300, 3, 3))
    if huge:
        corners[0] = [[-0.1, -0.1, -0.1], [1.1, -0.1, 1.1], [0.5, 1.1, 0.5]]
    vertices, faces = corners.reshape(-1, 3), np.arange(900).reshape(-1, 3)
    mins, maxs = corners.min(axis=1), corners.max(axis=1)
    expected = [(i, j) for i, j in itertools.combinations(range(300), 2)
                if np.all(mins[i] <= maxs[j]) and np.all(mins[j] <= maxs[i])]
    chunks = list(intersections._candidate_chunks(vertices, faces))
    first, second = (np.concatenate(column) for column in zip(*chunks))
    assert sorted(zip(first.tolist(), second.tolist())) == expected  # each pair once
    assert len(calls) == int(huge)
    assert len(chunks) == (50 if huge else 1)  # 300 boxes, 6 queried at a time (2,000 pairs at most)
    if huge:
        assert sum(i == 0 for i, _ in expected) == 299  # its box holds every other


@pytest.mark.parametrize("huge", [False, True])
def test_pairs_among_some_faces_are_the_full_pairs_with_one_of_them(huge):
    """`_intersecting_pairs(..., among)`, from the k-d tree (small faces) and from the R-tree (one face across the
    soup): the pairs of the whole soup with a face of `among`, each once and in order."""
    from pcflow.meshing.intersections import _intersecting_pairs

    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 2, size=(200, 1, 3)) + rng.normal(scale=0.25, size=(200, 3, 3))
    if huge:
        corners[7] = [[-0.5, -0.5, -0.5], [2.5, -0.5, 2.5], [1.0, 2.5, 1.0]]
    vertices, faces = corners.reshape(-1, 3), np.arange(600).reshape(-1, 3)
    every = _intersecting_pairs(vertices, faces)
    among = rng.random(200) < 0.2
    among[7] = True
    expected = every[among[every[:, 0]] | among[every[:, 1]]]
    assert len(expected) > 10 and len(expected) < len(every)
    np.testing.assert_array_equal(_intersecting_pairs(vertices, faces, among), expected)


def test_count_in_small_chunks_matches_brute_force(monkeypatch):
    """A soup with faces across all of it, its R-tree pairs handed over a few at a time: the same count."""
    import pcflow.meshing.intersections as intersections

    rng = np.random.default_rng(4)
    centres = rng.uniform(0, 3, size=(60, 1, 3))
    triangles = centres + rng.normal(scale=0.2, size=(60, 3, 3))
    triangles[:3] = rng.uniform(-0.5, 3.5, size=(3, 3, 3))  # three faces across the soup: the R-tree path
    expected = brute_force_count(triangles)
    assert expected > 5
    monkeypatch.setattr(intersections, "_QUERY_PAIRS", 100)
    assert count_self_intersections(soup(*triangles)) == expected
