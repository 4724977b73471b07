"""What the subcommands share beside their arguments: the options the arguments make, a stage timer, output."""

from __future__ import annotations

import sys

#: The exit code of a failed command (a usage error exits with argparse's 2, an interrupt with 130).
EXIT_FAILURE = 1


def fit_options(args, quiet: bool):
    """The `pcflow.pipeline.FitOptions` of the model arguments; a progress line unless `quiet` or not on a terminal."""
    from ..pipeline import FitOptions

    return FitOptions(
        alpha=args.alpha,
        mode=args.mode,
        flow=args.flow,
        epochs=args.epochs,
        surface_steps=args.surface_steps,
        fast=args.fast,
        genus=args.genus if args.genus == "auto" else int(args.genus),
        latent=args.latent,
        seed=args.seed,
        device=args.device,
        max_train_points=args.max_train_points or None,
        n_couplings=args.couplings,
        hidden_features=args.hidden,
        progress=not quiet and sys.stderr.isatty(),
    )


def mesh_options(args):
    """The `pcflow.pipeline.MeshOptions` of the mesh arguments (and ``--format``, ``--uv`` where a command has them)."""
    from ..pipeline import MeshOptions

    return MeshOptions(
        subdivisions=args.subdivisions,
        tolerance=args.tolerance,
        max_faces=args.max_faces,
        coverage=args.coverage,
        formats=tuple(getattr(args, "format", None) or ()),
        snap=not args.no_snap,
        uv=getattr(args, "uv", False),
    )


def stages(options, plan=()):
    """A `pcflow.pipeline.Timer` over the stages `plan`, with a progress line when `options.progress`."""
    from ..pipeline import Timer

    return Timer(plan=tuple(plan), progress=options.progress)


def say(args, message: str) -> None:
    """Prints `message` unless ``--quiet``."""
    if not args.quiet:
        print(message)
