"""`pcflow view` (an interactive window) and `pcflow render` (pictures and a turntable GIF, off-screen)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PcflowError
from .arguments import add_common_arguments
from .common import say


def register(subparsers) -> None:
    """Adds `view` and `render` to the subcommands."""
    p = subparsers.add_parser(
        "view", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="look at a cloud, its outliers and its surface in a window",
        description="Open an interactive 3-D window: inliers in their own colours, outliers in red, the boundary "
                    "surface semi-transparent, a checkbox to show or hide each, and with --model a coverage slider "
                    "(1 - alpha) that redraws the surface and recolours the points live, without refitting.",
        epilog="example:\n  pcflow view scan.ply --model out/model.pt\n"
               "  pcflow view out/inliers.ply --mesh out/mesh.ply",
    )
    _view_arguments(p)
    p.set_defaults(func=cmd_view, quiet=False)

    p = subparsers.add_parser(
        "render", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="draw a cloud, its outliers and its surface into a picture",
        description="Draw the scene of `pcflow view` off-screen (no display needed) from several views side by "
                    "side into a PNG or JPEG picture, and on request a turntable GIF.",
        epilog="example:\n  pcflow render scan.ply --model out/model.pt -o picture.png\n"
               "  pcflow render scan.ply --mesh out/mesh.ply -o picture.png --views front side --gif turn.gif",
    )
    _view_arguments(p)
    p.add_argument("-o", "--output", required=True, help="picture (.png, .jpg)")
    p.add_argument("--views", nargs="+", choices=("iso", "front", "back", "side", "left", "top", "bottom"),
                   default=["iso", "front", "side"], help="one panel per view, left to right (default: iso front side)")
    p.add_argument("--size", nargs=2, type=int, default=None, metavar=("WIDTH", "HEIGHT"),
                   help="picture size in pixels (default: 500 x 500 per view)")
    p.add_argument("--gif", default=None, help="also write a turntable GIF here (.gif)")
    p.add_argument("--frames", type=int, default=30, help="frames of the turntable (default 30)")
    add_common_arguments(p)
    p.set_defaults(func=cmd_render)


def _view_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="point cloud or mesh file (PLY, PCD, XYZ/TXT/CSV/PTS, LAS/LAZ, OBJ, STL, OFF)")
    parser.add_argument("--model", default=None,
                        help="saved model (pcflow fit or reconstruct): outliers in red and the region's surface")
    parser.add_argument("--mesh", default=None, help="surface to draw (default: the model's boundary with --model)")
    parser.add_argument("--coverage", type=float, default=None,
                        help="with --model, draw the region holding this share of the training points "
                             "(default 1 - alpha)")
    parser.add_argument("--up", choices=("x", "y", "z", "-x", "-y", "-z"), default=None,
                        help="the scene's up axis (default: z for LAS/LAZ, -y for PCD camera frames, else y)")
    parser.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")


def load_inputs(input_path, *, model_path=None, mesh_path=None, device: str = "cpu"):
    """Reads what `pcflow view` and `pcflow render` draw: (cloud, model or None, trimesh or None)."""
    from ..io import read_cloud, read_mesh

    cloud = read_cloud(input_path)
    if cloud.points.shape[1] != 3:
        raise PcflowError(f"{input_path}: expected 3-D points, got {cloud.points.shape[1]} coordinates per point")
    model = None
    if model_path:
        from ..models import load as load_model

        model = load_model(model_path, device=device)
    mesh = read_mesh(mesh_path) if mesh_path else None
    return cloud, model, mesh


def cmd_view(args) -> int:
    """`pcflow view`: open the interactive window (needs a display)."""
    from ..viz import view

    cloud, model, mesh = load_inputs(args.input, model_path=args.model, mesh_path=args.mesh, device=args.device)
    view(cloud, model=model, mesh=mesh, up=args.up, coverage=args.coverage)
    return 0


def cmd_render(args) -> int:
    """`pcflow render`: draw the scene off-screen into a picture and, with ``--gif``, a turntable."""
    from ..pipeline import prepare_outdir
    from ..viz import render_scene, render_turntable

    outputs = [Path(args.output)] + ([Path(args.gif)] if args.gif else [])
    inputs = tuple(path for path in (args.input, args.model, args.mesh) if path)
    for path in outputs:
        prepare_outdir(path.parent, [path.name], overwrite=args.overwrite, inputs=inputs)
    cloud, model, mesh = load_inputs(args.input, model_path=args.model, mesh_path=args.mesh, device=args.device)
    scene = {"cloud": cloud, "model": model, "mesh": mesh, "up": args.up, "coverage": args.coverage}
    size = tuple(args.size) if args.size else (500 * len(args.views), 500)
    render_scene(args.output, views=args.views, size=size, **scene)
    if args.gif:
        render_turntable(args.gif, n_frames=args.frames, **scene)
    say(args, f"wrote {', '.join(str(path) for path in outputs)}")
    return 0
