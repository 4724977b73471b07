"""`pcflow reconstruct` (one file or a batch) and `pcflow demo` (the bundled scan, scored against its labels)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PcflowError
from .arguments import add_cloud_output_arguments, add_reconstruct_arguments
from .common import EXIT_FAILURE, fit_options, mesh_options, say, stages


def register(subparsers) -> None:
    """Adds `reconstruct` and `demo` to the subcommands."""
    p = subparsers.add_parser(
        "reconstruct", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="clean a cloud and mesh it (the main job)",
        description="Fit OneFlow to a point cloud; write inliers.ply, outliers.ply, mesh.ply and mesh.obj "
                    "(watertight, with vertex normals), model.pt, report.json and preview.png into OUTDIR (with --uv "
                    "also mesh_uv.obj, texture coordinates for texturing). The default auto mode meshes the scanned "
                    "surface. A scene (a table or floor, walls, several objects) is split: its planes into "
                    "planes/plane_KK/, one closed mesh per object into objects/object_KK/, all objects in "
                    "scene_mesh.ply and .obj, a label per point in labels.npy. An open surface that is no scene "
                    "gets the smallest region holding 1 - alpha of the points, which --mode envelope always meshes "
                    "(faster).",
        epilog="example:\n  pcflow reconstruct scan.pcd -o out/ --alpha 0.05 --format stl glb\n"
               "  pcflow reconstruct scan.pcd -o out/ --fast   # 55-70% of the fit time, a coarser surface\n"
               "  pcflow reconstruct scan.pcd -o out/ --mode envelope   # bounding region, in seconds\n"
               "  pcflow reconstruct scans/ -o out/ --jobs 2      # every cloud in scans/, out/<name>/ each\n"
               "  pcflow reconstruct scans/ -o out/ --resume      # after a crash: skip the files already done\n"
               "  pcflow reconstruct scans/ -o out/ --scheduler tcp://host:8786   # one task per file on Dask\n"
               "  pcflow reconstruct 'scans/**/*.ply' -o out/\n"
               "  pcflow reconstruct scan.las -o out/ --classify --scores   # + classified.ply, outlier_score\n"
               "  pcflow reconstruct table.pcd -o out/ --scene --trim   # planes apart, one mesh per object, cut",
    )
    p.add_argument("input", nargs="+",
                   help="point cloud (PLY, PCD, XYZ/TXT/CSV/PTS, LAS/LAZ) or mesh (OBJ, STL, OFF, PLY); several "
                        "files, a folder or a quoted glob pattern make a batch: one sub-folder of OUTDIR per file "
                        "and OUTDIR/batch_report.json")
    p.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="batch: files reconstructed at once, in separate processes (default 1; 0: one per CPU); "
                        "one scene: objects fitted at once (default and 0: one per CPU)")
    p.add_argument("--resume", action="store_true",
                   help="keep the outputs of inputs already complete in OUTDIR (their report.json, written last, "
                        "is there), whatever settings made them, and redo the others, replacing what an unfinished "
                        "run left")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="batch: run each file as one task on the Dask distributed scheduler at ADDRESS "
                        "(tcp://host:8786; pip install 'pcflow[cluster]'), whose workers see the inputs and OUTDIR "
                        "at the same paths; --jobs is then unused")
    scene = p.add_argument_group("scenes (a table or floor, walls, several objects)")
    choice = scene.add_mutually_exclusive_group()
    choice.add_argument("--scene", dest="scene", action="store_const", const=True, default=None,
                        help="reconstruct the cloud as a scene: supporting planes apart, one closed mesh per object "
                             "(default in auto mode when a plane or several objects are found)")
    choice.add_argument("--no-scene", dest="scene", action="store_const", const=False,
                        help="reconstruct the cloud as one object, whatever it holds")
    scene.add_argument("--trim", action="store_true",
                       help="scene: cut each object's mesh to the faces near its points (open where the scanner did "
                            "not see; the closed mesh is kept as mesh_closed.ply)")
    scene.add_argument("--plane-meshes", action="store_true",
                       help="scene: also write each plane's convex polygon, planes/plane_KK/mesh.ply")
    add_reconstruct_arguments(p)
    add_cloud_output_arguments(p, denoise=False)
    p.set_defaults(func=cmd_reconstruct)

    p = subparsers.add_parser(
        "demo", formatter_class=argparse.RawDescriptionHelpFormatter, help="run reconstruct on the bundled cow scan",
        description="Reconstruct the bundled scan of Keenan Crane's Spot (20,000 points, 5% background outliers) "
                    "into a fresh folder, and score the outlier removal against the known labels.",
        epilog="example:\n  pcflow demo            # writes ./pcflow-demo (or pcflow-demo-2, ...)\n"
               "  pcflow demo -o results/demo",
    )
    p.add_argument("-o", "--output", default=None, help="output folder (default: a fresh ./pcflow-demo*)")
    add_reconstruct_arguments(p)
    p.set_defaults(func=cmd_demo)


def cmd_reconstruct(args) -> int:
    """`pcflow reconstruct`: one file into OUTDIR, or a batch into OUTDIR/<name>/, here or on a Dask cluster (exit 1
    if any file failed)."""
    if len(args.input) == 1 and Path(args.input[0]).is_file():  # one file, reconstructed in this process
        _start_preview_check(args)
    from ..pipeline.batch import BATCH_REPORT, completed, is_batch, run_batch
    from ..pipeline import reconstruct

    if not is_batch(args.input):
        if args.scheduler:
            raise PcflowError("--scheduler runs batches (a folder, a pattern or several files); one file runs here "
                              "without it")
        if args.resume and completed(args.output, args.input[0]) is not None:
            say(args, f"{args.output} already holds a complete reconstruct of {args.input[0]}; nothing to do")
            return 0
        if args.jobs is not None and args.jobs < 0:
            raise PcflowError(f"--jobs must be 0 or more, got {args.jobs}")
        options = fit_options(args, args.quiet)
        with stages(options, _reconstruct_plan(args)) as timer:
            report = reconstruct(
                args.input[0], args.output, options, mesh_options(args),
                overwrite=args.overwrite, preview=not args.no_preview, classify=args.classify, scores=args.scores,
                clear=args.resume, timer=timer, jobs=args.jobs, **_scene_options(args),
            )
        say(args, _summary(report, Path(args.output)))
        _warn(args, report)
        return 0
    report = run_batch(
        args.input, args.output, fit_options(args, True), mesh_options(args),
        jobs=1 if args.jobs is None else args.jobs, overwrite=args.overwrite, resume=args.resume,
        scheduler=args.scheduler, preview=not args.no_preview, classify=args.classify, scores=args.scores,
        scene=_scene_options(args), progress=lambda entry: _batch_line(args, entry),
    )
    skipped = f" ({report['n_skipped']} skipped as complete)" if report["n_skipped"] else ""
    say(args, f"{report['n_ok']} of {report['n_files']} files reconstructed{skipped} in {report['seconds']:.1f} s; "
              f"report in {Path(args.output) / BATCH_REPORT}")
    return 0 if report["n_failed"] == 0 else EXIT_FAILURE


def _start_preview_check(args) -> None:
    """With a preview to draw, starts the OpenGL check now (`pcflow.viz.gl.start_gl_check`): it runs while the
    command imports, reads and fits, instead of before the picture."""
    if not args.no_preview:
        from ..viz.gl import start_gl_check

        start_gl_check()


def _scene_options(args) -> dict:
    """`pipeline.reconstruct`'s scene settings from the command line."""
    return {"scene": args.scene, "trim": args.trim, "plane_meshes": args.plane_meshes}


def _warn(args, report: dict) -> None:
    """report.json's warnings on stderr, `pcflow: warning: ...` each (none with --quiet)."""
    if not args.quiet:
        for warning in report.get("warnings", ()):
            print(f"pcflow: warning: {warning}", file=sys.stderr)


def _reconstruct_plan(args) -> tuple[str, ...]:
    """The stages a single-file reconstruct or demo runs (`pcflow.pipeline.RECONSTRUCT_STAGES`)."""
    from ..pipeline import RECONSTRUCT_STAGES

    scene = getattr(args, "scene", None)
    skipped = {"preview"} if args.no_preview else set()
    one_object = args.mode != "auto" or getattr(args, "classify", False) or getattr(args, "scores", False)
    if scene is False or (scene is None and one_object):
        skipped.add("segment")  # one object: no search for planes and objects
    return tuple(stage for stage in RECONSTRUCT_STAGES if stage not in skipped)


def _batch_line(args, entry: dict) -> None:
    """One line per finished file of a batch: successes on stdout (unless quiet), failures on stderr."""
    if entry["skipped"]:
        say(args, f"skipped: {entry['input']}: complete in {entry['output']}")
    elif entry["ok"]:
        say(args, f"ok: {entry['input']}: kept {entry['n_inliers']}, removed {entry['n_outliers']} "
                  f"({entry['mode']} mode); outputs in {entry['output']}")
        _warn(args, {"warnings": [f"{entry['input']}: {warning}" for warning in entry["warnings"]]})
    else:
        print(f"pcflow: error: {entry['error']}", file=sys.stderr)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _scene_summary(report: dict, outdir: Path) -> str:
    """What `reconstruct` prints for a scene: counts, planes, and a line per object."""
    lines = [
        f"{report['input']}: {report['n_finite']} points ({report['n_dropped_nonfinite']} non-finite dropped); "
        f"a scene: {_count(report['n_planes'], 'plane')}, {_count(report['n_objects'], 'object')}, "
        f"{_count(report['n_outliers'], 'outlier')}",
    ]
    for entry in report["objects"]:
        mesh = entry["mesh"]
        trimmed = entry.get("trimmed")
        cut = f", trimmed to {trimmed['area_share']:.0%} of it: {_count(trimmed['boundary_loops'], 'boundary loop')}" \
            if trimmed else ""
        lines.append(f"object {entry['index']}: {entry['n_points']} points, {entry['mesh_file']}: watertight "
                     f"{mesh['watertight']}, components {mesh['n_components']}, euler {mesh['euler']}{cut}")
    lines.append(f"time: {report['timings']['total']:.1f} s; outputs in {outdir} (labels.npy: one label per point)")
    return "\n".join(lines)


def _summary(report: dict, outdir: Path) -> str:
    """What `reconstruct` and `demo` print: counts, mode, mesh checks, volumes, time, and a note on open scenes."""
    if report["mode"] == "scene":
        return _scene_summary(report, outdir)
    mesh = report["mesh"]
    lines = [
        f"{report['input']}: {report['n_finite']} points ({report['n_dropped_nonfinite']} non-finite dropped), "
        f"trained on {report['n_train']}",
        f"inliers {report['n_inliers']}, outliers {report['n_outliers']} "
        f"({report['mode']} mode, alpha {report['alpha']})",
        f"mesh: {mesh['n_vertices']} vertices, {mesh['n_faces']} faces, watertight {mesh['watertight']}, "
        f"components {mesh['n_components']}, euler {mesh['euler']}, self-intersections {mesh['self_intersections']}",
        f"volume: region {report['volume']:.6g}, mesh {report['mesh_volume']:.6g}",
        f"time: {report['timings']['total']:.1f} s; outputs in {outdir}",
    ]
    if report["requested_mode"] == "auto" and report["mode"] == "envelope":
        gap = report.get("surface_gap")
        spanned = "" if gap is None else f": {gap:.0%} of it"
        lines.append(f"note: an open scene (the fitted surface spanned empty space{spanned}), so the envelope was "
                     "fitted instead; --mode surface keeps the surface")
    elif report["mode"] == "surface" and mesh["self_intersections"]:
        lines.append("note: the surface mesh intersects itself, as it does when the cloud is an open scene rather "
                     "than an object; --mode envelope gives a closed region without self-intersections")
    return "\n".join(lines)


def demo_asset() -> tuple[Path, Path]:
    """Paths of the demo scan and its outlier labels, package data of pcflow (pcflow/assets/)."""
    from importlib.resources import files

    folder = files("pcflow") / "assets"
    scan = folder / "spot_scan.ply"
    if not isinstance(scan, Path) or not scan.is_file():
        raise PcflowError(f"the demo scan spot_scan.ply is missing from this installation of pcflow ({folder}); "
                          "reinstall pcflow")
    return scan, folder / "spot_scan_labels.npy"


def fresh_folder(base: Path) -> Path:
    """`base` if it does not exist yet, else the first of base-2, base-3, ... that does not."""
    if not base.exists():
        return base
    index = 2
    while Path(f"{base}-{index}").exists():
        index += 1
    return Path(f"{base}-{index}")


def cmd_demo(args) -> int:
    """`pcflow demo`: reconstruct the bundled scan into a fresh folder, then score it against the known labels."""
    _start_preview_check(args)
    from ..pipeline import reconstruct

    scan, labels_path = demo_asset()
    outdir = Path(args.output) if args.output else fresh_folder(Path("pcflow-demo"))
    options = fit_options(args, args.quiet)
    with stages(options, _reconstruct_plan(args)) as timer:
        report = reconstruct(
            scan, outdir, options, mesh_options(args), overwrite=args.overwrite, preview=not args.no_preview,
            timer=timer,
        )
    # the scan lies in the installed package: named relative to the working folder where it is inside it
    shown = scan.relative_to(Path.cwd()) if scan.is_relative_to(Path.cwd()) else scan
    say(args, _summary({**report, "input": str(shown)}, outdir))
    _warn(args, report)
    if labels_path.is_file():
        say(args, _demo_scores(scan, labels_path, outdir / "model.pt"))
    return 0


def _demo_scores(scan: Path, labels_path: Path, model_path: Path) -> str:
    """The demo's line on its outlier removal: precision, recall, F1, ROC AUC, inlier retention against the labels."""
    import numpy as np

    from ..models import load as load_model
    from ..io import read_cloud
    from ..metrics import outlier_scores

    labels = np.load(labels_path)
    model = load_model(model_path)
    points = read_cloud(scan).points
    outlying = -model.score_samples(points)  # one pass: inliers where decision_function = -outlying - offset_ >= 0
    scores = outlier_scores(labels, keep_mask=-outlying - model.offset_ >= 0, scores=outlying)
    return "against the known labels: " + ", ".join(
        f"{key} {scores[key]:.3f}" for key in ("precision", "recall", "f1", "roc_auc", "inlier_retention"))
