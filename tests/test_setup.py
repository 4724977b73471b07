"""Set-up on a fresh machine: scripts/setup.sh (run against stand-ins for apt and Python), .ci/run, and `pcflow demo`
from a wheel built here and installed in a new virtual environment."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup.sh"
PACKAGES = ["libusb-1.0-0", "libegl1", "libgl1-mesa-dri"]
TEST_COMMAND = "bash scripts/setup.sh && . .venv/bin/activate && python -m pytest -p no:dash"

#: stand-in for a command: logs its name and arguments (one line) to $CALLS, then runs its own body
STAND_IN = """#!/bin/bash
echo "$(basename "$0") $*" >> "$CALLS"
"""


def sandbox(tmp_path: Path, *, root: bool, installed: bool, sudo: bool = False, venv: bool = True) -> dict:
    """A copy of the repository's setup script whose apt-get, dpkg-query, id, sudo and Python are stand-ins."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, repo / "scripts" / "setup.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "basename", "dirname", "grep", "env", "mkdir", "cp", "chmod", "cat"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    stand_ins = {
        "apt-get": "",
        "dpkg-query": "echo 'install ok installed'\n" if installed else "exit 1\n",
        "id": f"echo {0 if root else 1000}\n",
        # python3: version and ensurepip checks pass; `-m venv DIR` makes DIR/bin/python, itself a stand-in
        "python3": 'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; fi\n'
                   'if [ "$1" = "-V" ]; then echo "Python 3.11.0"; fi\n',
    }
    if sudo:
        stand_ins["sudo"] = '"$@"\n'
    for name, body in stand_ins.items():
        (bin_dir / name).write_text(STAND_IN + body)
        (bin_dir / name).chmod(0o755)
    if venv:
        (repo / ".venv" / "bin").mkdir(parents=True)
        shutil.copy(bin_dir / "python3", repo / ".venv" / "bin" / "python")
    calls = tmp_path / "calls.log"
    calls.touch()
    env = {"PATH": str(bin_dir), "CALLS": str(calls), "HOME": str(tmp_path)}
    return {"repo": repo, "env": env, "calls": calls}


def run_setup(box: dict) -> tuple[subprocess.CompletedProcess, list[str]]:
    done = subprocess.run([shutil.which("bash"), str(box["repo"] / "scripts" / "setup.sh")], env=box["env"],
                          capture_output=True, text=True, timeout=60)
    calls = box["calls"].read_text().splitlines()
    return done, [line for line in calls if not line.startswith(("id", "dpkg-query"))]


def test_setup_as_root_installs_the_missing_packages_then_the_requirements(tmp_path):
    done, calls = run_setup(sandbox(tmp_path, root=True, installed=False))
    assert done.returncode == 0, done.stderr
    assert calls == [
        "python3 -c import sys; sys.exit(sys.version_info < (3, 10))",
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES),
        "python -m pip install -q -r requirements.txt -e .",
    ]


def test_setup_uses_sudo_when_not_root(tmp_path):
    done, calls = run_setup(sandbox(tmp_path, root=False, installed=False, sudo=True))
    assert done.returncode == 0, done.stderr
    assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " + " ".join(
        PACKAGES) in calls


def test_setup_without_root_or_sudo_names_the_packages(tmp_path):
    done, calls = run_setup(sandbox(tmp_path, root=False, installed=False))
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()
    assert len(message) == 1 and all(package in message[0] for package in PACKAGES), done.stderr
    assert not any(call.startswith(("apt-get", "python -m pip")) for call in calls)  # nothing half done


def test_setup_again_installs_nothing_new(tmp_path):
    box = sandbox(tmp_path, root=False, installed=True)  # no sudo either: it is not needed
    done, calls = run_setup(box)
    assert done.returncode == 0, done.stderr
    assert not any(call.startswith(("apt-get", "python3 -m venv")) for call in calls)
    assert calls[-1] == "python -m pip install -q -r requirements.txt -e ."


def test_setup_makes_the_venv_when_absent(tmp_path):
    box = sandbox(tmp_path, root=True, installed=True, venv=False)
    done, calls = run_setup(box)
    assert done.returncode == 0, done.stderr
    assert "python3 -m venv .venv" in calls and (box["repo"] / ".venv" / "bin" / "python").is_file()
    assert calls[-1] == "python -m pip install -q -r requirements.txt -e ."


def test_ci_runs_the_readme_test_command_and_installs_nothing_else():
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if line.strip() and not line.startswith("#")]
    assert TEST_COMMAND in commands
    installs = re.compile(r"\b(pip3?|apt(-get)?|dpkg|export)\b|-m venv")
    assert not [line for line in commands if line != TEST_COMMAND and installs.search(line)]


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
    info = subprocess.run([str(venv / "bin" / "pcflow"), "info", str(scan), "--json"], cwd=work, env=env, **quiet)
    assert json.loads(info.stdout)["n_points"] == 20_000
    demo = subprocess.run([str(venv / "bin" / "pcflow"), "demo", "-o", "demo", "--mode", "envelope", "--epochs", "2",
                           "--couplings", "2", "--hidden", "8", "--max-train-points", "2000", "--no-preview"],
                          cwd=work, env=env, **quiet)
    assert "against the known labels: precision" in demo.stdout
    assert Path(json.loads((work / "demo" / "report.json").read_text())["input"]) == scan
