"""A picture drawn in a child process started early: it imports pyvista and draws a first small picture (which also
checks that OpenGL renders here) while this process works, then draws the picture `render_scene` is asked for."""

from __future__ import annotations

import atexit
import importlib.util
import os
import pickle
import select
import subprocess
import sys
import tempfile

from ..errors import PcflowError

#: The longest wait for the child, from its start to its verdict on OpenGL and from then to the picture drawn.
WAIT_S = 120
_CHILD = ("-m", "pcflow.viz.child")  # what the child runs, after the Python executable
_worker: "RenderWorker | None" = None  # the child `start_render_worker` started that no picture has used yet


def start_render_worker() -> None:
    """Starts the child that draws this process's next picture (where pyvista is installed and the platform has
    `select` on pipes): the next `pcflow.viz.render_scene` call without a model is drawn there, and the child's
    imports and first picture run while this process works. Later calls draw in this process."""
    global _worker
    if _worker is None and os.name == "posix" and importlib.util.find_spec("pyvista") is not None:
        from .gl import _set_up_headless

        _set_up_headless()
        _worker = RenderWorker()
        atexit.register(_worker.close)


def take_render_worker() -> "RenderWorker | None":
    """The child `start_render_worker` started, once (then None until it is started again)."""
    global _worker
    worker, _worker = _worker, None
    return worker


class RenderWorker:
    """A child process that imports pyvista, draws a small picture and says whether OpenGL rendered it, then draws
    the one picture `render` sends it (`pcflow.viz.child`); it gives up when this process closes its
    stdin or ends."""

    def __init__(self):
        self._errors = tempfile.TemporaryFile()  # the child's stderr, read when it fails (a file: no pipe fills up)
        self._process = subprocess.Popen([sys.executable, *_CHILD], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._errors)

    def render(self, path, **scene) -> None:
        """Draws `render_scene(path, **scene)` in the child and waits for it (`scene`: render_scene's keywords, no
        model); a failure in the child is this call's.

        Raises:
            PcflowError: OpenGL cannot render here (the verdict is kept, as `pcflow.viz.gl` keeps its own check's),
                the child failed or took more than `WAIT_S`, or render_scene raised it in the child.
        """
        from . import gl

        state = None
        try:
            state, reason = self._receive()
            if state == "no_gl":
                gl._gl_checked = reason
                raise PcflowError(f"OpenGL cannot render here ({reason}); on Debian/Ubuntu: {gl._GL_HINT}")
            if state == "ready":
                gl._gl_checked = "ok"
                os.environ.setdefault("ALLOW_PLOTTING", "true")  # pyvista's own check is not needed here either
                try:
                    pickle.dump({"path": str(path), **scene}, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    self._process.stdin.close()
                except BrokenPipeError:
                    pass  # the child ended: `_receive` says why
                except (pickle.PicklingError, TypeError, AttributeError) as error:
                    raise PcflowError(f"the scene could not be sent to the picture's process: {error}") from None
                state, reason = self._receive(drawing=True)
            if state != "done":
                raise PcflowError(reason)
        finally:
            self.close(patience=5.0 if state == "done" else 0.0)

    def _receive(self, *, drawing: bool = False) -> tuple[str, str]:
        """The child's next message: ("ready", ""), ("done", ""), ("failed", why); or ("no_gl", why) where it
        ended before its first picture (a crashed test render, as `pcflow.viz.gl`'s check says), ("failed", why)
        where it ended while `drawing`."""
        readable, _, _ = select.select([self._process.stdout], [], [], WAIT_S)
        if not readable:
            return "failed", f"the picture's process gave no answer in {WAIT_S} s"
        try:
            return pickle.load(self._process.stdout)
        except (EOFError, pickle.UnpicklingError):
            return ("failed" if drawing else "no_gl"), self._failure(drawing)

    def _failure(self, drawing: bool) -> str:
        """Why the child ended without an answer: the signal that ended it (in its test render unless `drawing`),
        or the last line it wrote to stderr."""
        code = self._process.wait()
        if code < 0:
            return f"{'drawing the picture' if drawing else 'a test render'} crashed with signal {-code}"
        self._errors.seek(0)
        lines = [line for line in self._errors.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"the picture's process exited with status {code}"

    def close(self, patience: float = 0.0) -> None:
        """Ends the child (if it still runs `patience` seconds on: one that has drawn its picture ends by itself) and
        closes its pipes."""
        try:
            self._process.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdin, self._process.stdout, self._errors):
            if not stream.closed:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass
