"""The 3D jobs behind the command line: fit a cloud, split it into inliers and outliers, mesh the region, report.

One module per step, each importing only those below it: `options` (fit and mesh settings) and `timing` (stage
times), `outputs` (output folders, JSON), `fit` (a cloud's fit), `stream` (the same in bounded memory),
`reconstruct` (the whole job) and `batch` (many files in parallel processes or on a cluster).
"""

from .fit import choose_genus, fit_cloud, fitted_mode, points_3d, training_rows
from .options import (FAST, GENUS_NORMALIZE, MODES, OPEN_SCENE_GAP, SURFACE_STEPS, FitOptions, MeshOptions,
                      genus_params)
from .outputs import claimed_outdir, json_value, prepare_outdir, versions, write_json
from .reconstruct import (CLASSIFIED_OUTPUT, PER_RUN_REPORT_KEYS, RECONSTRUCT_OUTPUTS, extract_mesh, reconstruct,
                          write_meshes)
from .timing import RECONSTRUCT_STAGES, STAGE_LABELS, Timer

__all__ = [
    "CLASSIFIED_OUTPUT", "FAST", "GENUS_NORMALIZE", "MODES", "OPEN_SCENE_GAP", "PER_RUN_REPORT_KEYS",
    "RECONSTRUCT_OUTPUTS", "RECONSTRUCT_STAGES", "STAGE_LABELS", "SURFACE_STEPS", "FitOptions", "MeshOptions",
    "Timer", "choose_genus", "claimed_outdir", "extract_mesh", "fit_cloud", "fitted_mode", "genus_params",
    "json_value", "points_3d", "prepare_outdir", "reconstruct", "training_rows", "versions", "write_json",
    "write_meshes",
]
