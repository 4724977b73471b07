"""Faults while writing: a full device, a read-only folder, a SIGKILL mid-stream, two processes into one folder.

After each: no output file is partial (absent or complete), the input is byte-identical, temporary files are
`.NAME.XXXXXXXX.tmp` and the next run into the folder removes them, and the error is one line naming the file.
The tests on real tiny file systems mount a tmpfs, and skip where mounting is not permitted.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from pcflow.cli import main
from pcflow.errors import PcflowError
from pcflow.io import LOCK_NAME, PointCloud, CloudWriter, read_cloud, temporary_name, write_cloud, write_mesh
from pcflow.models import OneFlow, load
from pcflow.pipeline import write_json

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "2", "--surface-steps", "5", "--couplings", "2", "--hidden", "8", "-q"]
MESH = ["--subdivisions", "1", "--max-faces", "2000", "--no-preview"]


def cloud(n=3000, seed=0):
    return PointCloud(np.random.default_rng(seed).normal(size=(n, 3)))


def leftovers(folder: Path) -> list[str]:
    """Temporary and lock files in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".lock")))


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(size, ro=False)`: a fresh tmpfs mounted in tmp_path; skips where mounting is not permitted."""
    mounts = []

    def mount(size: str, ro: bool = False) -> Path:
        point = tmp_path / f"mount{len(mounts)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip() or done.returncode}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], check=False)


def fill(folder: Path) -> None:
    """Fills the device of `folder` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _model(seed=0):
    return OneFlow(epochs=1, n_couplings=2, hidden_features=8, random_state=seed).fit(cloud(500).points)


WRITERS = {
    **{f"cloud {name}{' ascii' if ascii else ''}": (name, lambda p, a=ascii: write_cloud(p, cloud(), ascii=a))
       for name in ("a.ply", "a.pcd", "a.xyz", "a.csv", "a.las", "a.laz") for ascii in (False, True)
       if not (ascii and name[-3:] in ("xyz", "csv", "las", "laz"))},
    **{f"mesh {name}": (name, lambda p: write_mesh(p, trimesh.creation.icosphere(3)))
       for name in ("m.ply", "m.obj", "m.stl", "m.off", "m.glb")},
    "report json": ("r.json", lambda p: write_json(p, {"values": list(range(5000))})),
    "model file": ("model.pt", lambda p: _model().save(p)),
    "streamed cloud": ("s.ply", lambda p: _stream(p)),
}


def _stream(path):
    with CloudWriter(path) as writer:
        for k in range(4):
            writer.write(cloud(1000, seed=k))


@pytest.mark.parametrize("case", sorted(WRITERS))
def test_every_writer_on_a_full_device_names_the_file_and_leaves_nothing(tmpfs, case):
    name, write = WRITERS[case]
    folder = tmpfs("256k")
    fill(folder)
    with pytest.raises(PcflowError) as raised:
        write(folder / name)
    assert str(raised.value) == f"cannot write {folder / name}: No space left on device"
    assert sorted(os.listdir(folder)) == ["filler"]


def _fail_replace(monkeypatch, name: str, code=errno.ENOSPC):
    """os.replace fails with `code` when it moves the temporary file of `name` into place."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            raise OSError(code, os.strerror(code))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def _fail_write(monkeypatch, name: str, calls: int, code=errno.ENOSPC):
    """Streamed writes of `name` fail with `code` from the `calls`-th chunk on (a device filling up mid-file)."""
    from pcflow.io.base import HeaderStream

    real, count = HeaderStream.write, [0]

    def write(self, records):
        count[0] += Path(self._where).name == name
        if count[0] >= calls:
            raise OSError(code, os.strerror(code))
        return real(self, records)

    monkeypatch.setattr(HeaderStream, "write", write)


@pytest.mark.parametrize("where", ["replace", "mid-write"])
def test_cli_denoise_on_a_full_device_says_which_file(tmp_path, monkeypatch, capsys, where):
    write_cloud(tmp_path / "in.ply", cloud())
    before = (tmp_path / "in.ply").read_bytes()
    out = tmp_path / "out"
    if where == "replace":
        _fail_replace(monkeypatch, "clean.ply")
    else:
        _fail_write(monkeypatch, "clean.ply", calls=3)
    code = main(["denoise", str(tmp_path / "in.ply"), "-o", str(out / "clean.ply"), "--outliers",
                 str(out / "removed.ply"), "--chunk-size", "500", *TINY])
    assert code == 1
    assert capsys.readouterr().err == f"pcflow: error: cannot write {out / 'clean.ply'}: No space left on device\n"
    assert (tmp_path / "in.ply").read_bytes() == before
    assert not (out / "clean.ply").exists() and leftovers(out) == []


def test_cli_reconstruct_on_a_full_device_leaves_no_report(tmp_path, monkeypatch, capsys):
    write_cloud(tmp_path / "in.ply", cloud())
    before = (tmp_path / "in.ply").read_bytes()
    out = tmp_path / "out"
    _fail_replace(monkeypatch, "mesh.obj")
    assert main(["reconstruct", str(tmp_path / "in.ply"), "-o", str(out), *TINY, *MESH]) == 1
    assert capsys.readouterr().err == f"pcflow: error: cannot write {out / 'mesh.obj'}: No space left on device\n"
    assert (tmp_path / "in.ply").read_bytes() == before
    assert not (out / "report.json").exists() and not (out / "mesh.obj").exists() and leftovers(out) == []
    # every file written before the fault is complete
    assert len(read_cloud(out / "inliers.ply")) + len(read_cloud(out / "outliers.ply")) == 3000


def test_cli_on_a_real_full_device(tmpfs, tmp_path, capsys):
    write_cloud(tmp_path / "in.ply", cloud(20_000))
    folder = tmpfs("128k")  # room for a part of the cleaned cloud only
    for args in (["denoise", str(tmp_path / "in.ply"), "-o", str(folder / "clean.ply"), "--chunk-size", "1000"],
                 ["reconstruct", str(tmp_path / "in.ply"), "-o", str(folder / "out"), *MESH]):
        assert main([*args, *TINY]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith(f"pcflow: error: cannot write {folder}/")
        assert error.endswith(": No space left on device\n")
        assert sorted(os.listdir(folder)) == []  # no partial file, no temporary, no empty output folder


@pytest.mark.parametrize("how", ["read-only mount", "injected"])
def test_cli_read_only_folder(tmpfs, tmp_path, monkeypatch, capsys, how):
    write_cloud(tmp_path / "in.ply", cloud())
    before = (tmp_path / "in.ply").read_bytes()
    if how == "read-only mount":
        folder = tmpfs("64k", ro=True)
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        real = os.open

        def refuse(path, flags, *args, **kwargs):
            if Path(path).parent == folder and flags & os.O_CREAT:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
        monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)  # as for root, who passes access checks
    assert main(["denoise", str(tmp_path / "in.ply"), "-o", str(folder / "clean.ply"), *TINY]) == 1
    error = capsys.readouterr().err
    assert error == f"pcflow: error: cannot write {folder / 'clean.ply'}: Read-only file system\n" or (
        error == f"pcflow: error: cannot write {folder / 'clean.ply'}: folder {folder} is not writable\n")
    assert os.listdir(folder) == [] and (tmp_path / "in.ply").read_bytes() == before
    if how == "read-only mount":
        assert main(["reconstruct", str(tmp_path / "in.ply"), "-o", str(folder / "out"), *TINY, *MESH]) == 1
        assert capsys.readouterr().err == (f"pcflow: error: cannot create output folder {folder / 'out'}: {folder} "
                                           "is not a writable folder\n")
        assert os.listdir(folder) == []


def _denoise_command(src: Path, out: Path, model: Path, chunk: int) -> list[str]:
    return [sys.executable, "-m", "pcflow.cli", "denoise", str(src), "-o", str(out / "clean.ply"), "--outliers",
            str(out / "removed.ply"), "--model", str(model), "--chunk-size", str(chunk), "-q"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _wait_for(predicate, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, "the process ended before the state awaited"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 100,000-point cloud and a small model fitted beforehand (the streamed denoise then only scores)."""
    folder = tmp_path_factory.mktemp("big")
    points = np.random.default_rng(3).normal(size=(100_000, 3))
    write_cloud(folder / "big.ply", PointCloud(points))
    OneFlow(epochs=2, n_couplings=2, hidden_features=8, random_state=0).fit(points[:2000]).save(folder / "model.pt")
    return folder / "big.ply", folder / "model.pt"


def test_sigkill_mid_denoise_leaves_no_partial_output_and_the_next_run_cleans(big, tmp_path):
    src, model = big
    before = src.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(_denoise_command(src, out, model, 500), env=_env())
    try:
        temporary = temporary_name("clean.ply")
        _wait_for(lambda: any(temporary.fullmatch(p.name) and p.stat().st_size > 0 for p in out.iterdir()),
                  process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    left = sorted(p.name for p in out.iterdir())
    assert "clean.ply" not in left and "removed.ply" not in left  # absent, not partial
    assert any(temporary.fullmatch(name) for name in left)  # recognisable
    assert src.read_bytes() == before
    done = subprocess.run(_denoise_command(src, out, model, 50_000), env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["clean.ply", "removed.ply"]  # the killed run's temporaries and lock: gone
    kept, removed = read_cloud(out / "clean.ply"), read_cloud(out / "removed.ply")
    inside = load(model).predict(read_cloud(src).points) == 1
    np.testing.assert_array_equal(kept.points, read_cloud(src).points[inside])
    assert len(kept) + len(removed) == 100_000


def _reconstruct_command(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pcflow.cli", "reconstruct", str(src), "-o", str(out), *TINY, *MESH]


@pytest.mark.parametrize("command", ["denoise", "reconstruct"])
def test_a_second_process_into_the_same_output_refuses_at_once(big, tmp_path, command):
    src, model = big
    out = tmp_path / "out"
    if command == "denoise":
        out.mkdir()
        first = _denoise_command(src, out, model, 500)
        lock = out / ".clean.ply.lock"
    else:
        write_cloud(tmp_path / "in.ply", cloud(3000))
        src, first, lock = tmp_path / "in.ply", _reconstruct_command(tmp_path / "in.ply", out), out / LOCK_NAME
    process = subprocess.Popen(first, env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lock.exists, process)
        process.send_signal(signal.SIGSTOP)  # the first holds the lock, paused mid-job, while the second runs
        start = time.monotonic()
        second = subprocess.run(first, env=_env(), capture_output=True, text=True, timeout=120)
        refused_in = time.monotonic() - start
        listing = sorted(os.listdir(out))
    finally:
        process.send_signal(signal.SIGCONT)
        _, first_errors = process.communicate(timeout=120)
    assert second.returncode == 1 and second.stdout == ""
    shown = out / ("clean.ply" if command == "denoise" else "inliers.ply")
    assert second.stderr == (f"pcflow: error: cannot write {shown}: process {process.pid} is writing there (lock "
                             f"{lock}); wait for it to finish or choose another output\n")
    assert refused_in < 30 and lock.name in listing
    assert process.returncode == 0, first_errors
    assert not lock.exists() and leftovers(out) == []
    if command == "denoise":
        assert len(read_cloud(out / "clean.ply")) + len(read_cloud(out / "removed.ply")) == 100_000
    else:
        report = json.loads((out / "report.json").read_text())
        assert all((out / name).is_file() for name in report["files"])


@pytest.mark.slow
def test_kill_script_quick_case(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "kill_denoise.py"), "--quick", "--work",
                           str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "kill_denoise.json").read_text())
    assert result["ok"] and result["points"] == 20_000 and len(result["kills"]) == 1
    assert result["kills"][0]["killed"] and result["final_run"]["complete"]
    assert sorted(os.listdir(tmp_path / "out")) == ["clean.ply", "removed.ply"]
