"""Set-up on a fresh machine: `pcflow demo` from a wheel built here and installed in a new virtual environment."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_demo_asset_licence_is_the_one_in_assets():
    assert (ROOT / "pcflow" / "assets" / "LICENSE-spot.txt").read_bytes() == (
        ROOT / "assets" / "LICENSE-spot.txt").read_bytes()


@pytest.mark.slow
def test_demo_runs_from_a_wheel_built_from_the_sdist(tmp_path):
    """sdist -> wheel -> new venv, offline; the installed `pcflow` finds the demo scan in that venv's site-packages."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "pcflow", source / "pcflow", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    quiet = {"capture_output": True, "text": True, "check": True, "timeout": 300}
    build = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    sdist = subprocess.run([sys.executable, "-c", build, str(dist)], cwd=source, **quiet).stdout.splitlines()[-1]
    with tarfile.open(dist / sdist) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python 3.10.12+, 3.11.4+
        archive.extractall(tmp_path / "unpacked", **safe)
    unpacked = next((tmp_path / "unpacked").iterdir())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(dist), str(unpacked)], **quiet)
    wheel = next(dist.glob("pcflow-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], **quiet)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], **quiet).stdout.strip())
    # the dependencies come from this interpreter's site-packages, after the new venv's own (no download)
    ours = dict.fromkeys(sysconfig.get_path(key) for key in ("purelib", "platlib"))
    (site / "test-dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], **quiet)

    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import pcflow, pcflow.cli; print(pcflow.__file__); "
                            "print(*pcflow.cli.demo_asset(), sep='\\n')"], cwd=work, env=env, **quiet)
    package, scan, labels = map(Path, where.stdout.splitlines())
    for path in (package, scan, labels):
        assert path.is_relative_to(site), path
    info = subprocess.run([str(venv / "bin" / "pcflow"), "info", str(scan)], cwd=work, env=env, **quiet)
    assert json.loads(info.stdout)["n_points"] == 20_000
    demo = subprocess.run([str(venv / "bin" / "pcflow"), "demo", "-o", "demo", "--mode", "envelope", "--epochs", "2",
                           "--couplings", "2", "--hidden", "8", "--max-train-points", "2000", "--no-preview"],
                          cwd=work, env=env, **quiet)
    assert "against the known labels: precision" in demo.stdout
    assert Path(json.loads((work / "demo" / "report.json").read_text())["input"]) == scan
