"""Tests of pcflow.metrics against hand-computed cases, scikit-learn and exact surface distances."""

import numpy as np
import pytest
import trimesh
from sklearn import metrics as skm

from pcflow.errors import PcflowError
from pcflow.meshing import validity
from pcflow.metrics import (UNMATCHED, average_precision, chamfer_metrics, light_validity, match_objects,
                            mesh_validity, outlier_scores, point_chamfer, roc_auc, scene_scores)
from pcflow.scene import NONFINITE, OUTLIER, PLANE


# ---------------------------------------------------------------- outlier scores

def test_hand_computed_precision_recall_f1():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    keep = np.array([False, False, True, False, True, True, True, True])  # flags 0, 1, 3
    r = outlier_scores(labels, keep_mask=keep)
    assert r["n_flagged"] == 3
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["inlier_retention"] == pytest.approx(4 / 5)
    assert r["n_outliers"] == 3 and r["n_points"] == 8
    assert "roc_auc" not in r


def test_perfect_and_empty_removal():
    labels = np.array([0, 1, 0, 1])
    perfect = outlier_scores(labels, keep_mask=labels == 0)
    assert (perfect["precision"], perfect["recall"], perfect["f1"], perfect["inlier_retention"]) == (1, 1, 1, 1)
    nothing = outlier_scores(labels, keep_mask=np.ones(4, bool))
    assert (nothing["precision"], nothing["recall"], nothing["f1"], nothing["n_flagged"]) == (0, 0, 0, 0)
    assert nothing["inlier_retention"] == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_mask_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(200) < 0.2).astype(np.int8)
    keep = rng.random(200) < 0.7
    r = outlier_scores(labels, keep_mask=keep)
    p, rec, f, _ = skm.precision_recall_fscore_support(labels, (~keep).astype(int), average="binary",
                                                        zero_division=0)
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((p, rec, f), abs=1e-12)
    assert r["inlier_retention"] == pytest.approx(skm.recall_score(labels, (~keep).astype(int), pos_label=0))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_levels", [None, 2, 5])
def test_roc_auc_and_ap_match_sklearn_with_ties(seed, n_levels):
    rng = np.random.default_rng(seed)
    labels = (rng.random(300) < 0.1 + 0.1 * seed).astype(np.int8)
    scores = rng.normal(size=300) + labels
    if n_levels is not None:  # coarse scores: many ties, including across the classes
        scores = np.round(scores * n_levels / 4.0)
    r = outlier_scores(labels, scores=scores)
    assert r["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert r["average_precision"] == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)


def reference_roc_auc(labels, scores):
    """AUC from ranks (Mann-Whitney U), tied scores sharing their mean rank: pcflow's own before scikit-learn's."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    n_pos = int(labels.sum())
    return (ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * (len(labels) - n_pos))


def reference_average_precision(labels, scores):
    """Sum over distinct thresholds of (R_k - R_{k-1}) P_k: pcflow's own before scikit-learn's."""
    order = np.argsort(-scores, kind="stable")
    ends = np.r_[np.flatnonzero(np.diff(scores[order])), len(scores) - 1]
    true_pos = np.cumsum(labels[order])[ends]
    return np.sum(np.diff(true_pos / labels.sum(), prepend=0.0) * true_pos / (ends + 1.0))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n_levels", [None, 2, 5])
def test_ranking_scores_equal_the_rank_and_threshold_formulas_with_ties(seed, n_levels):
    rng = np.random.default_rng(100 + seed)
    labels = rng.random(250) < 0.05 + 0.1 * seed
    scores = rng.normal(size=250) + labels
    if n_levels is not None:  # coarse scores: many ties, including across the classes
        scores = np.round(scores * n_levels / 4.0)
    pairs = np.sign(scores[labels][:, None] - scores[~labels][None, :])  # every positive-negative pair
    assert roc_auc(labels, scores) == pytest.approx(reference_roc_auc(labels, scores), abs=1e-12)
    assert roc_auc(labels, scores) == pytest.approx((pairs.mean() + 1) / 2, abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(reference_average_precision(labels, scores),
                                                              abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_mask_metrics_match_sklearn_with_no_outlier_or_nothing_flagged(seed):
    rng = np.random.default_rng(200 + seed)
    labels = rng.random(150) < 0.3 * (seed % 4) / 3  # seed 0, 4: no outlier at all
    keep = rng.random(150) < [0.0, 0.5, 0.9, 1.0][seed % 4]  # 0.0: everything flagged, 1.0: nothing
    r = outlier_scores(labels, keep_mask=keep)
    expected = skm.precision_recall_fscore_support(labels, ~keep, average="binary", pos_label=True,
                                                   zero_division=0)[:3]
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx(expected, abs=1e-12)
    assert all(type(r[key]) is float for key in ("precision", "recall", "f1", "inlier_retention"))


def test_hand_computed_ranking_scores():
    labels = [1, 0, 1, 0]
    assert roc_auc(labels, [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)  # pairs: 1, 1, 0.5, 1
    # thresholds 0.9 (P=1, R=.5), 0.5 (P=2/3, R=1), 0.1 (P=.5, R=1): AP = .5 * 1 + .5 * 2/3
    assert average_precision(labels, [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.5 + 1 / 3)
    assert roc_auc(labels, [0.0, 0.0, 0.0, 0.0]) == pytest.approx(0.5)
    assert average_precision(labels, [0.0, 0.0, 0.0, 0.0]) == pytest.approx(0.5)


def test_single_class_ranking_is_nan():
    r = outlier_scores(np.zeros(5, int), scores=np.arange(5.0))
    assert np.isnan(r["roc_auc"]) and np.isnan(r["average_precision"])


@pytest.mark.parametrize("kwargs, match", [
    ({}, "keep_mask"),
    ({"keep_mask": np.ones(3, bool)}, "keep_mask"),
    ({"keep_mask": np.ones(4, int)}, "keep_mask"),
    ({"scores": [0.0, 1.0, np.nan, 2.0]}, "scores"),
])
def test_bad_outlier_inputs_raise(kwargs, match):
    with pytest.raises(PcflowError, match=match):
        outlier_scores([0, 1, 0, 1], **kwargs)


def test_bad_labels_raise():
    with pytest.raises(PcflowError, match="labels"):
        outlier_scores([0, 2, 1], keep_mask=np.ones(3, bool))


# ---------------------------------------------------------------- reconstruction

def _sphere(radius):
    return trimesh.creation.icosphere(subdivisions=4, radius=radius)


def test_mesh_against_itself():
    mesh = _sphere(0.29)  # bounding-box diagonal about 1, as in the normalised frame
    r = chamfer_metrics(mesh, mesh, seed=1)  # the protocol's 100,000 samples
    spacing = np.sqrt(mesh.area / 100_000)
    assert r["cd_l1"] < spacing  # only the sampling gap: independent samples on the same surface
    assert r["fscore"] == 1.0 and r["precision"] == 1.0 and r["recall"] == 1.0
    assert r["normal_consistency"] > 0.99
    assert r["hausdorff"] < 0.01
    assert r["accuracy"] == pytest.approx(r["completeness"], rel=0.1)
    assert r["tau"] == 0.01 and r["n_samples"] == 100_000


def test_concentric_spheres():
    r1, r2 = 0.3, 0.35
    r = chamfer_metrics(_sphere(r1), _sphere(r2), n_samples=20_000)
    gap = r2 - r1
    # every nearest-sample distance is at least the radial gap (less the tiny facet sag)
    assert gap * 0.97 < r["cd_l1"] < gap * 1.1
    assert r["cd_l2"] == pytest.approx(gap ** 2, rel=0.2)
    assert r["fscore"] == 0.0 and r["precision"] == 0.0 and r["recall"] == 0.0
    assert r["normal_consistency"] > 0.99
    r_near = chamfer_metrics(_sphere(r1), _sphere(r1 + 0.002), n_samples=20_000)
    assert r_near["fscore"] > 0.99  # 0.002 apart: only sampling gaps reach beyond tau


def _expected_shifted_cube_distance(d, a=0.5):
    """Exact mean distance from a unit cube's surface to the same cube shifted by d along x (d < a)."""
    plus_face = d                                   # every point is d from the other +x face
    minus_face = 4 * (a ** 3 - (a - d) ** 3) / 3    # min(d, distance to the nearest side face)
    side_faces = 4 * d ** 2 / 2                     # the strip x in (0.5, 0.5 + d) of each side face
    return (plus_face + minus_face + side_faces) / 6.0


def test_shifted_cube_against_exact_distance():
    d, n = 0.1, 50_000
    cube = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    shifted = cube.copy()
    shifted.apply_translation([d, 0.0, 0.0])
    r = chamfer_metrics(shifted, cube, n_samples=n, seed=3)
    expected = _expected_shifted_cube_distance(d)
    bias = 0.5 * np.sqrt(cube.area / n)  # nearest sample instead of nearest surface point
    for key in ("accuracy", "completeness"):
        assert expected - 0.002 < r[key] < expected + bias
    assert d <= r["hausdorff"] < d + 2 * bias

    # slow, obviously correct reference: exact point-to-surface distances of the same kind of samples
    samples, _ = trimesh.sample.sample_surface(shifted, 3000, seed=5)
    _, exact, _ = trimesh.proximity.closest_point(cube, samples)
    assert exact.mean() == pytest.approx(expected, abs=0.002)
    assert exact.mean() - 0.002 < r["accuracy"] < exact.mean() + bias


def test_chamfer_is_seeded():
    a, b = _sphere(0.3), trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    assert chamfer_metrics(a, b, n_samples=2000, seed=7) == chamfer_metrics(a, b, n_samples=2000, seed=7)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_samples": 0}, "n_samples"),
    ({"tau": 0.0}, "tau"),
])
def test_bad_chamfer_inputs_raise(kwargs, match):
    with pytest.raises(PcflowError, match=match):
        chamfer_metrics(_sphere(0.3), _sphere(0.3), **kwargs)


def test_chamfer_rejects_non_mesh():
    with pytest.raises(PcflowError, match="pred_mesh"):
        chamfer_metrics(np.zeros((3, 3)), _sphere(0.3))


# ---------------------------------------------------------------- validity

def test_light_validity_of_closed_and_open_meshes():
    sphere = _sphere(1.0)
    v = light_validity(sphere)
    assert v["watertight"] and v["winding_consistent"] and v["positive_volume"]
    assert v["n_components"] == 1 and v["euler"] == 2
    assert v["volume"] == pytest.approx(4 / 3 * np.pi, rel=0.01)

    flipped = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1], process=False)
    assert not light_validity(flipped)["positive_volume"]

    open_mesh = trimesh.Trimesh(sphere.vertices, sphere.faces[1:], process=False)
    v = light_validity(open_mesh)
    assert not v["watertight"] and v["euler"] == 1

    two = trimesh.util.concatenate([sphere, _sphere(0.5).apply_translation([5.0, 0.0, 0.0])])
    v = light_validity(two)
    assert v["n_components"] == 2 and v["euler"] == 4 and v["watertight"]

    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3)
    assert light_validity(torus)["euler"] == 0


def test_mesh_validity_is_the_meshing_report():
    sphere = _sphere(1.0)
    report = mesh_validity(sphere)
    assert report == validity(sphere)
    assert report["n_faces"] == 5120 and report["self_intersections"] == 0


def test_light_validity_is_the_meshing_report_without_intersections():
    sphere = _sphere(1.0)
    full = validity(sphere, check_intersections=False)
    light = light_validity(sphere)
    assert full["self_intersections"] is None
    assert light == {key: full[key] for key in light}


@pytest.mark.parametrize("mesh, match", [(np.zeros((3, 3)), "trimesh.Trimesh"),
                                         (trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), int)), "no faces")])
def test_light_validity_rejects_what_is_not_a_mesh(mesh, match):
    with pytest.raises(PcflowError, match=match):
        light_validity(mesh)


def test_mesh_validity_agrees_with_light_report_on_shared_fields():
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3)
    full, light = mesh_validity(mesh), light_validity(mesh)
    assert set(light) <= set(full)
    for key in light:
        assert full[key] == pytest.approx(light[key])


# ---------------------------------------------------------------- point samples and scenes

def test_point_chamfer_agrees_with_brute_force_distances():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    gt = rng.uniform(-0.5, 0.5, size=(300, 3))
    pred = np.concatenate([gt[:200] + rng.normal(0, 0.01, size=(200, 3)), rng.uniform(-0.5, 0.5, size=(50, 3))])
    d = cdist(pred, gt)
    r = point_chamfer(pred, gt, tau=0.02)
    assert r["accuracy"] == pytest.approx(d.min(axis=1).mean())
    assert r["completeness"] == pytest.approx(d.min(axis=0).mean())
    assert r["precision"] == pytest.approx(np.mean(d.min(axis=1) <= 0.02))
    assert r["recall"] == pytest.approx(np.mean(d.min(axis=0) <= 0.02))
    assert r["hausdorff"] == pytest.approx(max(d.min(axis=1).max(), d.min(axis=0).max()))
    same = point_chamfer(gt, gt)
    assert same["cd_l1"] == 0.0 and same["fscore"] == 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"pred_points": np.zeros((0, 3))}, "pred_points"),
    ({"gt_points": np.zeros((4, 2))}, "gt_points"),
    ({"gt_points": np.full((4, 3), np.nan)}, "gt_points"),
    ({"tau": 0.0}, "tau"),
])
def test_bad_point_chamfer_inputs_raise(kwargs, match):
    with pytest.raises(PcflowError, match=match):
        point_chamfer(**{"pred_points": np.zeros((4, 3)), "gt_points": np.ones((4, 3)), **kwargs})


def scene_truth():
    """200 points each of objects 0 and 1, 300 of object 2, 500 table, 100 wall, 50 outliers."""
    return np.repeat([0, 1, 2, PLANE, PLANE + 1, OUTLIER], [200, 200, 300, 500, 100, 50])


def test_scene_scores_of_the_truth_with_other_numbers():
    truth = scene_truth()
    renamed = np.select([truth == 0, truth == 1, truth == 2, truth == PLANE, truth == PLANE + 1],
                        [5, 3, 0, PLANE + 1, PLANE], default=NONFINITE)  # other ids; planes swapped
    r = scene_scores(truth, renamed)
    assert r["matches"] == {0: 2, 3: 1, 5: 0} and r["n_found"] == r["n_present"] == r["n_predicted"] == 3
    assert r["label_accuracy"] == 1.0 and r["outlier_f1"] == 1.0
    assert r["object_iou"] == {0: 1.0, 1: 1.0, 2: 1.0}


def test_scene_scores_of_merged_split_and_missed_objects():
    truth = scene_truth()
    pred = truth.copy()
    pred[truth == 1] = 0  # objects 0 and 1 merged: 200 points of each, the tie goes to the lower label, 0
    pred[np.flatnonzero(truth == 2)[:100]] = 7  # a third of object 2 split off
    pred[np.flatnonzero(truth == PLANE)[:40]] = OUTLIER  # 40 table points flagged
    pred[np.flatnonzero(truth == OUTLIER)[:10]] = PLANE  # 10 outliers taken for the table
    r = scene_scores(truth, pred)
    assert match_objects(truth, pred) == r["matches"] == {0: 0, 2: 2}  # piece 7 is smaller than piece 2
    assert (r["n_present"], r["n_found"], r["n_predicted"]) == (3, 2, 3)
    wrong = 200 + 100 + 40 + 10  # object 1's points, the split piece, the table points, the outliers
    assert r["label_accuracy"] == pytest.approx(1 - wrong / len(truth))
    assert r["outlier_precision"] == pytest.approx(40 / 80) and r["outlier_recall"] == pytest.approx(40 / 50)
    assert r["object_iou"] == {0: pytest.approx(200 / 400), 1: 0.0, 2: pytest.approx(200 / 300)}
    assert scene_scores(truth, pred, min_points=250)["n_present"] == 1  # only object 2 has 250 points


def test_a_predicted_object_of_plane_points_matches_nothing():
    truth = scene_truth()
    pred = np.where(truth == PLANE, 9, truth)  # the table taken for an object
    r = scene_scores(truth, pred)
    assert r["matches"] == {0: 0, 1: 1, 2: 2} and r["n_predicted"] == 4
    assert r["label_accuracy"] == pytest.approx(1 - 500 / len(truth))
    assert UNMATCHED not in truth


@pytest.mark.parametrize("pred, match", [
    (np.zeros(5, dtype=int), "has 5 labels"),
    (np.zeros(1350), "dtype float64"),
    (np.full(1350, -7), "holds -7"),
])
def test_bad_scene_labels_raise(pred, match):
    with pytest.raises(PcflowError, match=match):
        scene_scores(scene_truth(), pred)
