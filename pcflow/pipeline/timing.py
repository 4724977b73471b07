"""Wall time per stage of a job, logged as each stage ends, with an optional progress line naming the running one."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

#: The `Timer` stages of `pcflow.pipeline.reconstruct`, in order (``preview`` only when asked for).
RECONSTRUCT_STAGES = ("read", "segment", "fit", "score", "write_clouds", "mesh", "mesh_checks", "genus",
                      "write_mesh", "preview")
#: The stages of a scene's reconstruct (`pcflow.pipeline.scene.reconstruct_scene`), in order.
SCENE_STAGES = ("read", "segment", "fit", "score", "write_clouds", "objects", "write_mesh", "preview")
#: What a progress line calls each stage.
STAGE_LABELS = {"read": "reading", "segment": "finding planes and objects", "fit": "fitting", "score": "scoring",
                "write_clouds": "writing the clouds", "mesh": "meshing", "mesh_checks": "checking the mesh",
                "genus": "estimating the genus", "write_mesh": "writing the meshes and model",
                "objects": "fitting the objects", "preview": "rendering the preview"}

_log = logging.getLogger(__name__)


@dataclass
class Timer:
    """Wall time per named stage, in seconds; `with timer("fit"): ...` times one stage.

    Each stage that ends without an error is logged with its time (logger ``pcflow.pipeline.timing``, level INFO; the
    command line shows these with ``--verbose``). With `progress`, a line on stderr (tqdm) names the running stage,
    numbered by its place in `plan`; it is cleared by `close`, or at the end of a ``with Timer(...) as timer:``.
    """

    stages: dict = field(default_factory=dict)
    plan: tuple[str, ...] = ()
    progress: bool = False
    _bar: object = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self):
                timer._show(name)
                self.start = time.perf_counter()

            def __exit__(self, kind, *exc):
                seconds = time.perf_counter() - self.start
                timer.stages[name] = timer.stages.get(name, 0.0) + seconds
                if kind is None:
                    _log.info("%s: %.2f s", name, seconds)

        return _Stage()

    def _show(self, name: str) -> None:
        if not self.progress:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(bar_format="{desc} [{elapsed}]", leave=False, file=sys.stderr)
        number = f"stage {self.plan.index(name) + 1}/{len(self.plan)}: " if name in self.plan else ""
        self._bar.set_description_str(f"pcflow: {number}{STAGE_LABELS.get(name, name)}")

    def close(self) -> None:
        """Clears the progress line, if one is shown."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Timer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
