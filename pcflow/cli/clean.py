"""`pcflow denoise` (the cleaned cloud, streamed in bounded memory) and `pcflow fit` (a saved model, data-parallel
under torchrun)."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path

from ..errors import PcflowError
from .arguments import add_cloud_output_arguments, add_common_arguments, add_fit_arguments
from .common import fit_options, say, stages


def register(subparsers) -> None:
    """Adds `denoise` and `fit` to the subcommands."""
    p = subparsers.add_parser(
        "denoise", formatter_class=argparse.RawDescriptionHelpFormatter, help="write the cleaned cloud only",
        description="Remove outliers from a point cloud, keeping every vertex property of the input (a LAS/LAZ "
                    "output of a LAS/LAZ input also keeps its point format, scales, offsets and CRS records).",
        epilog="example:\n  pcflow denoise scan.ply -o clean.ply --outliers removed.ply --alpha 0.02\n"
               "  pcflow denoise scan.ply -o clean.ply --model out/model.pt\n"
               "  pcflow denoise tile.las -o clean.las\n"
               "  pcflow denoise tile.laz -o marked.laz --classify   # every point, outliers class 7\n"
               "  pcflow denoise scan.ply -o clean.ply --scores      # + float32 outlier_score per point",
    )
    p.add_argument("input", help="point cloud or mesh file")
    p.add_argument("-o", "--output", required=True,
                   help="cleaned cloud (.ply, .pcd, .xyz, .txt, .csv, .las, .laz); every point with --classify")
    p.add_argument("--outliers", default=None, help="also write the removed points here")
    p.add_argument("--model", default=None, help="use this saved model instead of fitting one")
    p.add_argument("--ascii", action="store_true", help="write ASCII PLY/PCD instead of binary")
    p.add_argument("--chunk-size", type=int, default=1_000_000,
                   help="read, score and write this many points at a time; memory stays bounded (default 1000000)")
    add_cloud_output_arguments(p, denoise=True)
    add_fit_arguments(p)
    add_common_arguments(p)
    p.set_defaults(func=cmd_denoise)

    p = subparsers.add_parser(
        "fit", formatter_class=argparse.RawDescriptionHelpFormatter, help="fit a model and save it",
        description="Fit OneFlow to a point cloud and save the model (load it with pcflow.OneFlow.load).",
        epilog="example:\n  pcflow fit scan.ply -o model.pt --surface-steps 2000\n"
               "  pcflow fit scan.ply -o model.pt --mode envelope --flow general --epochs 200\n"
               "  torchrun --nproc_per_node 4 -m pcflow.cli fit city.las -o model.pt --max-train-points 0"
               "   # data-parallel",
    )
    p.add_argument("input", help="point cloud or mesh file")
    p.add_argument("-o", "--output", required=True, help="model file (.pt)")
    add_fit_arguments(p)
    add_common_arguments(p)
    p.set_defaults(func=cmd_fit)


def cmd_denoise(args) -> int:
    """`pcflow denoise`: fit (or load) a model, then score and write the cloud chunk by chunk."""
    from ..io import output_lock
    from ..models import load as load_model
    from ..pipeline import fitted_mode, prepare_outdir
    from ..pipeline.stream import denoise_file

    outputs = [Path(args.output)] + ([Path(args.outliers)] if args.outliers else [])
    if len(outputs) == 2 and outputs[0].absolute().resolve() == outputs[1].absolute().resolve():
        raise PcflowError(f"--outliers {args.outliers} is the cleaned cloud's own file; name another")
    for path in outputs:
        prepare_outdir(path.parent, [path.name], overwrite=args.overwrite, inputs=(args.input,))
    with ExitStack() as locks:
        # one lock per output file: a second denoise into the same file fails at once, and the lock clears what a
        # killed run left half-written there
        for path in outputs:
            locks.enter_context(output_lock(path))
            prepare_outdir(path.parent, [path.name], overwrite=args.overwrite, inputs=(args.input,))
        model = load_model(args.model, device=args.device) if args.model else None
        options = fit_options(args, args.quiet)
        plan = ("read", "score", "write_clouds") if model is not None else ("read", "fit", "score", "write_clouds")
        with stages(options, plan) as timer:
            result = denoise_file(
                args.input, args.output, args.outliers, model=model, fit_options=options,
                chunk_size=args.chunk_size, ascii=args.ascii, classify=args.classify, scores=args.scores,
                timer=timer,
            )
    mode = "" if args.model else f" ({fitted_mode(result['model'])} mode)"
    if args.classify:
        say(args, f"marked {result['n_outliers']} of {result['n_finite']} points as noise (class 7){mode}; "
                  f"wrote {args.output}")
    else:
        say(args, f"kept {result['n_inliers']} of {result['n_finite']} points, removed {result['n_outliers']}"
                  f"{mode}; wrote {args.output}")
    return 0


def cmd_fit(args) -> int:
    """`pcflow fit`: fit a model on one rank, or data-parallel on every rank torchrun starts; rank 0 saves it."""
    from ..distributed import init_from_env, shutdown
    from ..io import read_cloud
    from ..pipeline import fit_cloud, fitted_mode, prepare_outdir

    output = Path(args.output)
    parallel = init_from_env(args.device)  # several ranks under torchrun, one otherwise
    try:
        prepare_outdir(output.parent, [output.name], overwrite=args.overwrite, inputs=(args.input,))
        options = fit_options(args, args.quiet or parallel.rank > 0)
        with stages(options, ("read", "fit")) as timer:
            with timer("read"):
                cloud = read_cloud(args.input)
            model = fit_cloud(cloud, options, timer)
    finally:
        shutdown()
    if parallel.rank == 0:
        model.save(output)
        ranks = f" on {parallel.world_size} ranks" if parallel.world_size > 1 else ""
        surface = f" + {model.n_surface_steps_} surface steps" if model.objective == "surface" else ""
        say(args, f"fitted {model.n_samples_fit_} points{ranks} in {fitted_mode(model)} mode, {model.n_iter_} "
                  f"epochs{surface}; radius {model.radius_:.4g}, volume {model.volume_:.6g}; wrote {output}")
    return 0
