"""Tests of pcflow.io.atomic: nothing half-written, inputs never overwritten, failed writes named, one job a lock."""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.io import LOCK_NAME, atomic_output, output_lock, read_cloud, write_cloud, write_mesh

from iosamples import rich_cloud


def test_atomic_output_leaves_nothing_when_the_body_raises(tmp_path):
    target = tmp_path / "out.ply"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


def test_never_overwrites_an_input(tmp_path):
    write_cloud(tmp_path / "in.ply", rich_cloud())
    before = (tmp_path / "in.ply").read_bytes()
    cloud = read_cloud(tmp_path / "in.ply")
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        write_cloud(tmp_path / "in.ply", cloud)
    (tmp_path / "sub").mkdir()
    alias = tmp_path / "sub" / ".." / "in.ply"
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        write_cloud(alias, cloud.subset([0]), inputs=())
    os.symlink(tmp_path / "in.ply", tmp_path / "link.ply")
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        with atomic_output(tmp_path / "link.ply", inputs=[tmp_path / "in.ply"]):
            pass
    with pytest.raises(PcflowError, match="refusing to overwrite"):
        write_mesh(tmp_path / "in.ply", trimesh.creation.box(), inputs=[tmp_path / "in.ply"])
    assert (tmp_path / "in.ply").read_bytes() == before


def test_atomic_output_refuses_a_missing_folder(tmp_path):
    with pytest.raises(PcflowError, match="does not exist"):
        with atomic_output(tmp_path / "nope" / "a.ply"):
            pass
    with pytest.raises(PcflowError, match="is a folder"):
        with atomic_output(tmp_path):
            pass


def test_a_failed_write_names_its_file_and_a_read_error_passes(tmp_path, monkeypatch):
    target = tmp_path / "out.ply"
    with pytest.raises(PcflowError) as raised:
        with atomic_output(target) as tmp:
            tmp.write_text("part")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(raised.value) == f"cannot write {target}: No space left on device"
    with pytest.raises(FileNotFoundError):  # an input's error keeps its own file name
        with atomic_output(target):
            open(tmp_path / "missing.ply", "rb")
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.EDQUOT, "Disk quota exceeded")))
    with pytest.raises(PcflowError, match=f"^cannot write {target}: Disk quota exceeded$"):
        with atomic_output(target) as tmp:
            tmp.write_text("all")
    monkeypatch.setattr(os, "replace", real)
    assert list(tmp_path.iterdir()) == []


def test_output_lock_refuses_a_second_holder_and_clears_stale_temporaries(tmp_path):
    stale = [tmp_path / ".inliers.ply.ab_3x9zq.tmp", tmp_path / ".report.json.00000000.tmp"]
    kept = [tmp_path / ".other.ply.ab_3x9zq.tmp", tmp_path / ".inliers.ply.tmp", tmp_path / "inliers.ply"]
    for path in stale + kept:
        path.write_text("x")
    with output_lock(tmp_path, ["inliers.ply", "report.json"]) as lock:
        assert lock == tmp_path / LOCK_NAME and lock.read_text() == f"{os.getpid()}\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LOCK_NAME] + [p.name for p in kept])
        with pytest.raises(PcflowError, match=rf"^cannot write {tmp_path}/inliers.ply: process {os.getpid()} is "
                                              "writing there"):
            with output_lock(tmp_path, ["inliers.ply"]):
                pass
        with output_lock(tmp_path / "clean.ply") as other:  # a file's own lock is another lock
            assert other.name == ".clean.ply.lock"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


def test_a_killed_holder_leaves_no_lock_in_force(tmp_path):
    code = ("import sys, time; from pcflow.io import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(PcflowError, match=f"process {holder.pid} is writing there"):
            with output_lock(tmp_path):
                pass
        holder.send_signal(signal.SIGKILL)
    finally:
        holder.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()  # left behind, but not in force
    with output_lock(tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []
