"""`pcflow view` (an interactive window) and `pcflow render` (pictures and a turntable GIF, off-screen)."""

from __future__ import annotations

import argparse
import json
import re
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
                    "(1 - alpha) that redraws the surface and recolours the points live, without refitting. On a "
                    "`pcflow reconstruct` output folder: its inliers, outliers and mesh, or for a scene each object "
                    "and its surface in its own colour, the planes grey.",
        epilog="example:\n  pcflow view scan.ply --model out/model.pt\n"
               "  pcflow view out/inliers.ply --mesh out/mesh.ply\n  pcflow view out",
    )
    _view_arguments(p)
    p.set_defaults(func=cmd_view, quiet=False)

    p = subparsers.add_parser(
        "render", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="draw a cloud, its outliers and its surface into a picture",
        description="Draw the scene of `pcflow view` off-screen (no display needed) from several views side by "
                    "side into a PNG or JPEG picture, and on request a turntable GIF.",
        epilog="example:\n  pcflow render scan.ply --model out/model.pt -o picture.png\n"
               "  pcflow render scan.ply --mesh out/mesh.ply -o picture.png --views front side --gif turn.gif\n"
               "  pcflow render out -o scene.png",
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
    parser.add_argument("input", help="point cloud or mesh file (PLY, PCD, XYZ/TXT/CSV/PTS, LAS/LAZ, OBJ, STL, OFF), "
                                      "or a `pcflow reconstruct` output folder")
    parser.add_argument("--model", default=None,
                        help="saved model (pcflow fit or reconstruct): outliers in red and the region's surface")
    parser.add_argument("--mesh", default=None, help="surface to draw (default: the model's boundary with --model)")
    parser.add_argument("--coverage", type=float, default=None,
                        help="with --model, draw the region holding this share of the training points "
                             "(default 1 - alpha)")
    parser.add_argument("--up", choices=("x", "y", "z", "-x", "-y", "-z"), default=None,
                        help="the scene's up axis (default: z for LAS/LAZ, -y for PCD camera frames, else y)")
    parser.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")


def load_inputs(input_path, *, model_path=None, mesh_path=None, device: str = "cpu") -> dict:
    """Reads what `pcflow view` and `pcflow render` draw, as keyword arguments of `pcflow.viz.render_scene`:
    cloud, model and mesh (None when not given); from an output folder also inside, or labels, object_meshes and
    plane_meshes (see `load_outdir`). A `mesh_path` replaces the folder's mesh."""
    from ..io import read_cloud, read_mesh

    scene = load_outdir(input_path) if Path(input_path).is_dir() else {"cloud": read_cloud(input_path)}
    cloud = scene["cloud"]
    if cloud.points.shape[1] != 3:
        raise PcflowError(f"{input_path}: expected 3-D points, got {cloud.points.shape[1]} coordinates per point")
    scene["model"] = None
    if model_path:
        if "labels" in scene:
            raise PcflowError(f"{input_path} is a scene (labels.npy): its points are labelled already; drop --model")
        from ..models import load as load_model

        scene["model"] = load_model(model_path, device=device)
        scene.pop("inside", None)
    scene["mesh"] = read_mesh(mesh_path) if mesh_path else scene.get("mesh")
    return scene


def load_outdir(outdir) -> dict:
    """What a `pcflow reconstruct` output folder shows, as keyword arguments of `pcflow.viz.render_scene`.

    A scene folder (it holds labels.npy): the points of inliers.ply labelled by its ``label`` property (else by the
    non-negative entries of labels.npy, in order), the points of outliers.ply labelled outliers, the points of
    planes/plane_KK/cloud.ply labelled plane KK where inliers.ply has none of that plane, and the surfaces
    objects/object_KK/mesh.ply and planes/plane_KK/mesh.ply. Any other folder: the points of inliers.ply and
    outliers.ply, split by an inside mask, and mesh.ply. The cloud's `source` is the input named in report.json,
    when there is one (its suffix sets the default up axis).

    Raises:
        PcflowError: no inliers.ply, labels that do not fit the clouds, an unreadable file.
    """
    import numpy as np

    from ..io import PointCloud, read_cloud, read_mesh
    from ..scene import OUTLIER, PLANE

    outdir = Path(outdir)
    if not (outdir / "inliers.ply").is_file():
        raise PcflowError(f"{outdir} holds no inliers.ply; expected a `pcflow reconstruct` output folder")
    clouds = [read_cloud(outdir / "inliers.ply")]
    if (outdir / "outliers.ply").is_file():
        clouds.append(read_cloud(outdir / "outliers.ply"))
    scene = {}
    if (outdir / "labels.npy").is_file():
        labels = [_inlier_labels(outdir, clouds[0])]
        if len(clouds) == 2:
            labels.append(np.full(len(clouds[1]), OUTLIER, dtype=np.int64))
        for k, path in _numbered(outdir / "planes", "plane"):
            if (path / "cloud.ply").is_file() and not np.any(labels[0] == PLANE + k):
                clouds.append(read_cloud(path / "cloud.ply"))
                labels.append(np.full(len(clouds[-1]), PLANE + k, dtype=np.int64))
        scene["labels"] = np.concatenate(labels)
        scene["object_meshes"] = {k: read_mesh(path / "mesh.ply") for k, path in _numbered(outdir / "objects", "object")
                                  if (path / "mesh.ply").is_file()}
        scene["plane_meshes"] = {k: read_mesh(path / "mesh.ply") for k, path in _numbered(outdir / "planes", "plane")
                                 if (path / "mesh.ply").is_file()}
    else:
        scene["inside"] = np.concatenate([np.full(len(cloud), k == 0) for k, cloud in enumerate(clouds)])
        if (outdir / "mesh.ply").is_file():
            scene["mesh"] = read_mesh(outdir / "mesh.ply")
    fields = [cloud.fields for cloud in clouds]
    same = all(f is not None and f.dtype == fields[0].dtype for f in fields)
    scene["cloud"] = PointCloud(
        np.concatenate([cloud.points for cloud in clouds]), np.concatenate(fields) if same else None,
        source=_source(outdir),
    )
    return scene


def _inlier_labels(outdir: Path, inliers):
    """The (N,) int64 labels of the points of a scene's inliers.ply: its ``label`` property, else labels.npy's
    non-negative entries."""
    import numpy as np

    names = inliers.fields.dtype.names if inliers.fields is not None else ()
    if "label" in names:
        return inliers.fields["label"].astype(np.int64)
    try:
        labels = np.load(outdir / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PcflowError(f"{outdir / 'labels.npy'}: cannot read it ({error})") from None
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise PcflowError(f"{outdir / 'labels.npy'} holds a {labels.dtype} array of shape {labels.shape}; expected "
                          "one integer label per input point")
    labels = labels[labels >= 0].astype(np.int64)
    if len(labels) != len(inliers):
        raise PcflowError(f"{outdir / 'labels.npy'} labels {len(labels)} points objects or planes but inliers.ply "
                          f"holds {len(inliers)}; expected one label per inlier")
    return labels


def _numbered(folder: Path, stem: str) -> list[tuple[int, Path]]:
    """(k, folder/<stem>_KK) for each such sub-folder, by k."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in folder.iterdir()
             if path.is_dir() and (m := re.fullmatch(rf"{stem}_(\d+)", path.name))]
    return sorted(found)


def _source(outdir: Path) -> str:
    """The input a reconstruct output folder came from (report.json), else its inliers.ply."""
    try:
        source = json.loads((outdir / "report.json").read_text()).get("input")
    except (OSError, ValueError, AttributeError):
        source = None
    return str(source) if isinstance(source, str) and source else str(outdir / "inliers.ply")


def cmd_view(args) -> int:
    """`pcflow view`: open the interactive window (needs a display)."""
    from ..viz import view

    scene = load_inputs(args.input, model_path=args.model, mesh_path=args.mesh, device=args.device)
    view(**scene, up=args.up, coverage=args.coverage)
    return 0


def cmd_render(args) -> int:
    """`pcflow render`: draw the scene off-screen into a picture and, with ``--gif``, a turntable."""
    from ..pipeline import prepare_outdir
    from ..viz import render_scene, render_turntable

    outputs = [Path(args.output)] + ([Path(args.gif)] if args.gif else [])
    inputs = tuple(path for path in (args.input, args.model, args.mesh) if path)
    for path in outputs:
        prepare_outdir(path.parent, [path.name], overwrite=args.overwrite, inputs=inputs)
    scene = load_inputs(args.input, model_path=args.model, mesh_path=args.mesh, device=args.device)
    scene.update(up=args.up, coverage=args.coverage)
    size = tuple(args.size) if args.size else (500 * len(args.views), 500)
    render_scene(args.output, views=args.views, size=size, **scene)
    if args.gif:
        render_turntable(args.gif, n_frames=args.frames, **scene)
    say(args, f"wrote {', '.join(str(path) for path in outputs)}")
    return 0
