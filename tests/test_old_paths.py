"""The import paths of the version before the package split still give the same objects, for one version."""

import importlib

import pytest

OLD_PATHS = {
    "pcflow.detector": "pcflow.models",
    "pcflow.mesh": "pcflow.meshing",
    "pcflow.stream": "pcflow.pipeline.stream",
    "pcflow.batch": "pcflow.pipeline.batch",
}
#: Names an old path re-exports from a module other than its successor.
ELSEWHERE = {("pcflow.detector", "Flow"): "pcflow.flows"}


@pytest.mark.parametrize("old, new", sorted(OLD_PATHS.items()))
def test_every_public_name_of_an_old_path_is_the_new_modules_object(old, new):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    names = [name for name in vars(old_module) if not name.startswith("_") and name not in ("annotations",)]
    names = [name for name in names if not isinstance(getattr(old_module, name), type(importlib))]
    assert names, f"{old} re-exports nothing"
    for name in names:
        source = importlib.import_module(ELSEWHERE.get((old, name), new))
        assert getattr(old_module, name) is getattr(source, name), f"{old}.{name}"


def test_the_old_paths_hold_what_was_imported_from_them():
    from pcflow.batch import run_batch  # noqa: F401
    from pcflow.detector import PAPER_2D, OneFlow  # noqa: F401
    from pcflow.mesh import boundary_mesh, snap_to_points, surface_gap, validity  # noqa: F401
    from pcflow.stream import denoise_file, split_file  # noqa: F401
