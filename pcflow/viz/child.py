"""The child process of `pcflow.viz.worker`: it imports pyvista and draws a small picture (the OpenGL check), says
whether that worked, then draws the one picture its parent sends on stdin (`python -m pcflow.viz.child`)."""

from __future__ import annotations

import os
import pickle
import sys
import tempfile

from ..errors import PcflowError


def _warm_up() -> None:
    """Draws a small scene as `render_scene` draws one (a sphere, its vertices as points in two colours) and
    removes it: pyvista's imports, the OpenGL context and the shaders are then ready for the picture that counts."""
    import numpy as np
    import trimesh

    from ..io import PointCloud
    from .render import render_scene

    sphere = trimesh.creation.icosphere(subdivisions=1)
    with tempfile.TemporaryDirectory() as folder:
        render_scene(os.path.join(folder, "warm_up.png"), cloud=PointCloud(np.asarray(sphere.vertices)),
                     inside=np.arange(len(sphere.vertices)) % 2 == 0, mesh=sphere, size=(96, 32))


def _serve() -> int:
    """The child's work, at the lowest CPU priority (it runs while the parent fits, on whatever the fit leaves of the
    CPU): the warm-up, its verdict, then the one picture sent on stdin (none if stdin closes)."""
    os.nice(19)
    channel = os.fdopen(os.dup(1), "wb")  # the answers; what VTK or pyvista print goes to stderr instead
    os.dup2(2, 1)

    def answer(state: str, reason: str = "") -> None:
        pickle.dump((state, reason), channel)
        channel.flush()

    from . import gl
    from .render import render_scene

    gl._gl_checked = "ok"  # this process is the check: a crash ends it, and the parent reads the signal
    os.environ.setdefault("ALLOW_PLOTTING", "true")
    try:
        _warm_up()
    except PcflowError as error:
        answer("failed", str(error))
        return 0
    answer("ready")
    try:
        job = pickle.load(sys.stdin.buffer)
    except EOFError:  # the parent needed no picture
        return 0
    try:
        render_scene(job.pop("path"), **job)
    except PcflowError as error:
        answer("failed", str(error))
        return 0
    answer("done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_serve())
    except KeyboardInterrupt:
        sys.exit(130)
