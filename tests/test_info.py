"""`pcflow info` and `pcflow.io.describe`: counts, bounds, spacing, properties, object or scene, mesh topology."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from plyfile import PlyData
from scipy.spatial import cKDTree

import pcflow.io
from pcflow.cli import main
from pcflow.io import SCENE_PLANE_SHARE, describe, read_cloud, write_mesh
from pcflow.meshing import validity

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "pcflow" / "assets" / "spot_scan.ply"


def plane_and_object(seed=0):
    """A synthetic scene: a 4 x 4 floor of 3000 points at z = 0 and a unit ball's surface of 1000 points above."""
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.uniform(-2, 2, (3000, 2)), rng.normal(scale=0.002, size=3000)]
    direction = rng.normal(size=(1000, 3))
    ball = direction / np.linalg.norm(direction, axis=1, keepdims=True) + [0.0, 0.0, 1.5]
    return floor, ball


def test_bundled_scan_matches_direct_computation():
    info = describe(SPOT)
    points = read_cloud(SPOT).points
    ply = PlyData.read(str(SPOT))
    assert info["n_points"] == len(points) == ply["vertex"].count and info["n_nonfinite"] == 0
    assert info["fields"] == {p.name: str(np.dtype(p.val_dtype)) for p in ply["vertex"].properties}
    np.testing.assert_array_equal(info["bounds"], [points.min(axis=0), points.max(axis=0)])
    np.testing.assert_allclose(info["size"], np.ptp(points, axis=0))
    # the sampled median against every point's nearest neighbour
    every = cKDTree(points).query(points, k=2)[0][:, 1]
    assert info["spacing"]["median_nn"] == pytest.approx(np.median(every), rel=0.03)
    assert info["shape"]["kind"] == "object" and info["shape"]["plane_share"] < SCENE_PLANE_SHARE
    assert info["has_colors"] and not info["is_mesh"]


def test_spacing_of_a_grid_is_its_step_and_duplicates_are_skipped(tmp_path):
    axis = np.arange(12) * 0.25
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3) + 1000.0
    np.savetxt(tmp_path / "grid.xyz", np.vstack([grid, grid]))  # every point twice
    info = describe(tmp_path / "grid.xyz")
    assert info["spacing"]["median_nn"] == pytest.approx(0.25, abs=1e-9)
    assert info["n_points"] == 2 * len(grid)


def test_scene_and_object_are_told_apart(tmp_path):
    floor, ball = plane_and_object()
    np.savetxt(tmp_path / "scene.xyz", np.vstack([floor, ball]))
    np.savetxt(tmp_path / "object.xyz", ball)
    scene, alone = describe(tmp_path / "scene.xyz"), describe(tmp_path / "object.xyz")
    assert scene["shape"]["kind"] == "scene" and alone["shape"]["kind"] == "object"
    # the share against the known floor: the points within the tolerance of z = 0
    points = np.vstack([floor, ball])
    direct = np.mean(np.abs(points[:, 2]) <= scene["shape"]["tolerance"])
    assert scene["shape"]["plane_share"] == pytest.approx(direct, abs=0.03)
    low, high = np.percentile(points, [1, 99], axis=0)
    assert scene["shape"]["tolerance"] == pytest.approx(pcflow.io.PLANE_TOLERANCE * np.linalg.norm(high - low),
                                                        rel=0.05)
    assert alone["shape"]["plane_share"] < SCENE_PLANE_SHARE


def test_table_top_scan_is_a_scene(shared_data):
    table = shared_data("scans", "table_scene_mug_stereo_textured.pcd")
    info = describe(table)
    cloud = read_cloud(table)
    assert info["n_points"] - info["n_nonfinite"] == len(cloud) and info["n_nonfinite"] == cloud.n_dropped_nonfinite
    np.testing.assert_allclose(info["bounds"], [cloud.points.min(axis=0), cloud.points.max(axis=0)])
    assert info["organized"] == (640, 480) and info["shape"]["kind"] == "scene"


def test_text_and_json_tell_the_same(tmp_path, capsys):
    floor, ball = plane_and_object()
    np.savetxt(tmp_path / "scene.xyz", np.vstack([floor, ball]))
    for path, kind in ((SPOT, "an object"), (tmp_path / "scene.xyz", "a scene")):
        assert main(["info", str(path)]) == 0
        text = capsys.readouterr().out
        info = describe(path)
        assert f"{info['n_points']} points" in text and f"looks like: {kind}" in text
        assert f"{info['shape']['plane_share']:.0%}" in text and f"{info['spacing']['median_nn']:.4g}" in text
        assert main(["info", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(info))


@pytest.mark.parametrize("shape, genus, components", [
    (trimesh.creation.icosphere(subdivisions=2), 0, 1),
    (trimesh.creation.torus(major_radius=1.0, minor_radius=0.3), 1, 1),
    (trimesh.util.concatenate([trimesh.creation.box(), trimesh.creation.box().apply_translation([3, 0, 0])]),
     None, 2),
])
def test_mesh_topology(tmp_path, capsys, shape, genus, components):
    write_mesh(tmp_path / "m.ply", shape)
    assert main(["info", str(tmp_path / "m.ply"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    reference = validity(shape, check_intersections=False)
    assert info["is_mesh"] and info["n_faces"] == len(shape.faces) and info["n_points"] == len(shape.vertices)
    assert info["mesh"]["watertight"] and info["mesh"]["n_components"] == components
    assert info["mesh"]["genus"] == genus and info["mesh"]["euler"] == shape.euler_number == reference["euler"]
    assert info["shape"] is None  # a mesh says what it is through its topology
    assert main(["info", str(tmp_path / "m.ply")]) == 0
    assert f"watertight yes, components {components}, euler {reference['euler']}" in capsys.readouterr().out


def test_info_of_a_cloud_imports_no_torch(tmp_path):
    np.savetxt(tmp_path / "cloud.xyz", plane_and_object()[1])
    # the package's own __init__ is left out, so only what `info` itself imports is loaded
    code = (
        "import sys, types\n"
        "sys.modules['torch'] = None  # any import of torch fails\n"
        f"package = types.ModuleType('pcflow'); package.__path__ = [{str(ROOT / 'pcflow')!r}]\n"
        "package.__version__ = '0'; sys.modules['pcflow'] = package\n"
        "from pcflow import cli\n"
        f"code = cli.main(['info', {str(tmp_path / 'cloud.xyz')!r}, '--json'])\n"
        "assert 'torch' not in [name.split('.')[0] for name in sys.modules if sys.modules[name] is not None]\n"
        "raise SystemExit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["shape"]["kind"] == "object"
