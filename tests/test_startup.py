"""Start-up cost: `import pcflow` and the command line's parser load no torch; each subcommand imports what it needs."""

import json
import subprocess
import sys

import numpy as np
import pytest

import pcflow
from pcflow.io import PointCloud, write_cloud


def loaded_after(code: str) -> dict:
    """Runs `code` in a fresh interpreter; which of the heavy libraries it left imported."""
    report = "print(json.dumps({name: name in sys.modules for name in ('torch', 'trimesh', 'pyvista', 'sklearn')}))"
    probe = f"{code}\nimport json, sys\n{report}"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_the_parser_imports_no_torch():
    loaded = loaded_after("import pcflow.cli\npcflow.cli.build_parser().format_help()")
    assert loaded == {"torch": False, "trimesh": False, "pyvista": False, "sklearn": False}


@pytest.mark.parametrize("command", ["reconstruct", "demo", "denoise", "fit", "mesh", "info", "render"])
def test_subcommand_help_imports_no_torch(command):
    code = (f"import pcflow.cli\ntry:\n    pcflow.cli.main([{command!r}, '--help'])\n"
            "except SystemExit as done:\n    assert done.code == 0, done.code")
    assert not loaded_after(code)["torch"]


def test_import_pcflow_is_lazy_and_oneflow_still_imports():
    assert loaded_after("import pcflow") == {"torch": False, "trimesh": False, "pyvista": False, "sklearn": False}
    assert loaded_after("from pcflow import NotFittedError")["sklearn"] is True
    assert loaded_after("from pcflow import OneFlow")["torch"] is True


def test_lazy_names_are_the_detectors():
    from pcflow import detector

    assert pcflow.OneFlow is detector.OneFlow
    assert pcflow.LLFlow is detector.LLFlow and pcflow.SurfaceFlow is detector.SurfaceFlow
    assert pcflow.PAPER_2D is detector.PAPER_2D and pcflow.PAPER_TABULAR is detector.PAPER_TABULAR
    for name in pcflow.__all__:
        assert getattr(pcflow, name) is not None, name
        assert name in dir(pcflow), name
    with pytest.raises(AttributeError, match="no attribute 'OneFlows'"):
        pcflow.OneFlows  # noqa: B018


def test_star_import_gives_all(tmp_path):
    namespace = {}
    exec("from pcflow import *", namespace)
    assert set(pcflow.__all__) <= set(namespace)


def test_info_on_a_cloud_imports_no_torch(tmp_path):
    path = tmp_path / "cloud.ply"
    write_cloud(path, PointCloud(np.random.default_rng(0).normal(size=(50, 3))))
    code = f"import pcflow.cli\nassert pcflow.cli.main(['info', {str(path)!r}]) == 0"
    assert loaded_after(code)["torch"] is False
