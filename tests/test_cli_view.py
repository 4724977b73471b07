"""Tests for `pcflow view` and `pcflow render` on a `pcflow reconstruct` output folder, a plain one and a scene."""

import json

import numpy as np
import pytest
import trimesh

from pcflow import viz
from pcflow.cli.main import main
from pcflow.cli.view import load_inputs, load_outdir
from pcflow.errors import PcflowError
from pcflow.io import PointCloud, write_cloud, write_mesh
from test_cli import can_render as skip_without_rendering
from test_viz import hue_mask

CENTRES = np.array([[-2.5, 2.0, 0.0], [2.5, 2.0, 0.0]])


def scene_points(seed=0):
    """(points, labels): objects 0 and 1 upper left and right, plane 0 along the bottom, outliers in the middle."""
    rng = np.random.default_rng(seed)
    objects = [rng.normal(size=(80, 3)) * 0.25 + centre for centre in CENTRES]
    plane = np.c_[rng.uniform(-3.5, 3.5, 300), rng.normal(scale=0.02, size=300) - 2.5, rng.uniform(-1, 1, 300)]
    outliers = rng.normal(size=(30, 3)) * 0.2
    labels = np.r_[np.zeros(80), np.ones(80), np.full(300, 1000), np.full(30, -1)].astype(np.int64)
    return np.vstack([*objects, plane, outliers]), labels


def write_scene(folder, *, label_property=True, plane_in_inliers=True):
    """A scene output folder in the layout `pcflow reconstruct` writes for a scene."""
    folder.mkdir(exist_ok=True)
    points, labels = scene_points()
    inlier = labels >= 0 if plane_in_inliers else (labels >= 0) & (labels < 1000)
    inliers = PointCloud(points[inlier])
    if label_property:
        inliers = inliers.with_fields({"label": labels[inlier].astype(np.int32)})
    write_cloud(folder / "inliers.ply", inliers)
    write_cloud(folder / "outliers.ply", PointCloud(points[labels == -1]))
    np.save(folder / "labels.npy", np.r_[labels, -2])  # one input point had a NaN
    for k, centre in enumerate(CENTRES):
        (folder / "objects" / f"object_{k:02d}").mkdir(parents=True)
        sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.7).apply_translation(centre)
        write_mesh(folder / "objects" / f"object_{k:02d}" / "mesh.ply", sphere)
        write_cloud(folder / "objects" / f"object_{k:02d}" / "cloud.ply", PointCloud(points[labels == k]))
    (folder / "planes" / "plane_00").mkdir(parents=True)
    write_cloud(folder / "planes" / "plane_00" / "cloud.ply", PointCloud(points[labels == 1000]))
    box = trimesh.creation.box(extents=(7.0, 0.05, 2.0)).apply_translation([0.0, -2.5, 0.0])
    write_mesh(folder / "planes" / "plane_00" / "mesh.ply", box)
    (folder / "report.json").write_text(json.dumps({"input": "scan.las"}))
    return points, labels


@pytest.fixture
def can_render():
    skip_without_rendering()


def test_a_scene_folder_gives_labels_and_meshes(tmp_path):
    points, labels = write_scene(tmp_path)
    scene = load_outdir(tmp_path)
    order = np.r_[np.flatnonzero(labels >= 0), np.flatnonzero(labels == -1)]
    np.testing.assert_array_equal(scene["labels"], labels[order])
    np.testing.assert_allclose(scene["cloud"].points, points[order])
    assert sorted(scene["object_meshes"]) == [0, 1] and sorted(scene["plane_meshes"]) == [0]
    np.testing.assert_allclose(scene["object_meshes"][1].centroid, CENTRES[1], atol=1e-6)
    assert scene["cloud"].source == "scan.las"  # the input's suffix sets the up axis
    assert "inside" not in scene and "mesh" not in scene


def test_labels_come_from_labels_npy_without_the_property(tmp_path):
    _, labels = write_scene(tmp_path, label_property=False)
    scene = load_outdir(tmp_path)
    np.testing.assert_array_equal(scene["labels"], np.r_[labels[labels >= 0], labels[labels == -1]])


def test_plane_points_come_from_the_plane_cloud_when_inliers_lack_them(tmp_path):
    _, labels = write_scene(tmp_path, plane_in_inliers=False)
    scene = load_outdir(tmp_path)
    assert np.bincount(scene["labels"] + 1).tolist()[:3] == [30, 80, 80]
    assert (scene["labels"] == 1000).sum() == 300 and scene["labels"][-1] == 1000


def test_a_plain_folder_gives_inliers_outliers_and_the_mesh(tmp_path):
    rng = np.random.default_rng(1)
    write_cloud(tmp_path / "inliers.ply", PointCloud(rng.normal(size=(50, 3))))
    write_cloud(tmp_path / "outliers.ply", PointCloud(rng.normal(size=(7, 3)) + 5))
    write_mesh(tmp_path / "mesh.ply", trimesh.creation.icosphere(subdivisions=1))
    scene = load_inputs(tmp_path)
    assert scene["inside"].tolist() == [True] * 50 + [False] * 7
    assert len(scene["mesh"].faces) == 80 and scene["model"] is None and "labels" not in scene
    assert scene["cloud"].source == str(tmp_path / "inliers.ply")


def test_bad_folders_say_what_is_wrong(tmp_path):
    with pytest.raises(PcflowError, match="holds no inliers.ply"):
        load_outdir(tmp_path)
    write_scene(tmp_path, label_property=False)
    np.save(tmp_path / "labels.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(PcflowError, match="labels 3 points objects or planes but inliers.ply holds 460"):
        load_outdir(tmp_path)
    np.save(tmp_path / "labels.npy", np.zeros(3))
    with pytest.raises(PcflowError, match="float64 array"):
        load_outdir(tmp_path)
    write_scene(tmp_path / "scene")
    with pytest.raises(PcflowError, match="drop --model"):
        load_inputs(tmp_path / "scene", model_path=tmp_path / "model.pt")


def test_render_of_a_scene_folder_colours_each_object(tmp_path, can_render, capsys):
    import imageio.v3 as iio

    folder = tmp_path / "out"
    write_scene(folder)
    picture = tmp_path / "scene.png"
    assert main(["render", str(folder), "-o", str(picture), "--views", "front", "--size", "320", "320",
                 "--up", "y", "-q"]) == 0
    image = np.asarray(iio.imread(picture))[..., :3].astype(int)
    chroma = image.max(axis=-1) - image.min(axis=-1)
    for k, columns in enumerate((slice(0, 130), slice(190, 320))):
        mask = hue_mask(image, viz.OBJECT_PALETTE[k])
        assert mask[40:130, columns].sum() > 500
        assert mask.sum() < 1.05 * mask[40:130, columns].sum()  # that object's colour nowhere else
    bottom = image[220:]
    assert ((chroma[220:] < 12) & (bottom.max(axis=-1) < 225)).sum() > 500  # the grey plane


def test_view_of_a_scene_folder_passes_the_scene_on(tmp_path, monkeypatch):
    write_scene(tmp_path)
    seen = {}
    monkeypatch.setattr(viz, "view", lambda cloud, **kwargs: seen.update(cloud=cloud, **kwargs))
    assert main(["view", str(tmp_path)]) == 0
    assert len(seen["cloud"]) == 490 and sorted(seen["object_meshes"]) == [0, 1]
    assert seen["labels"].tolist().count(1000) == 300 and seen["model"] is None
