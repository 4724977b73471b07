"""Tests of pcflow.io.atomic: nothing half-written, inputs never overwritten."""

import os

import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.io import atomic_output, read_cloud, write_cloud, write_mesh

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
