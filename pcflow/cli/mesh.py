"""`pcflow mesh`: the boundary mesh of a saved model at any resolution or coverage, or a marching-cubes surface."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PcflowError
from .arguments import add_common_arguments, add_mesh_arguments
from .common import mesh_options, say


def register(subparsers) -> None:
    """Adds `mesh` to the subcommands."""
    p = subparsers.add_parser(
        "mesh", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="mesh a saved model at any resolution or coverage",
        description="Extract the boundary mesh of a saved 3-D model: the latent sphere (or a genus-1 to 3 fit's "
                    "tori, or a shaped fit's latent surface) mapped through the inverse flow (watertight, of the fit's "
                    "genus), or a marching-cubes surface of the decision function for cross-checking.",
        epilog="example:\n  pcflow mesh out/model.pt -o fine.obj --subdivisions 5 --coverage 0.99\n"
               "  pcflow mesh out/model.pt -o mc.ply --marching-cubes 128\n"
               "  pcflow mesh out/model.pt -o textured.obj --uv   # texture coordinates of the latent chart",
    )
    p.add_argument("model", help="model file written by pcflow fit or reconstruct")
    p.add_argument("-o", "--output", required=True,
                   help="mesh file (.ply, .obj, .stl, .off, .glb); .ply and .obj open watertight, with vertex "
                        "normals, in Open3D, trimesh and meshio (STL has facet normals, OFF none)")
    add_mesh_arguments(p)
    p.add_argument("--uv", action="store_true",
                   help="write the latent chart's texture coordinates per face corner into the .obj output, for "
                        "texturing (trimesh and Open3D then split its vertices at the chart's seam)")
    p.add_argument("--marching-cubes", type=int, default=None, metavar="RESOLUTION",
                   help="use marching cubes on a grid of this many cells per axis instead of the latent surface's mesh")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_common_arguments(p)
    p.set_defaults(func=cmd_mesh)


def cmd_mesh(args) -> int:
    """`pcflow mesh`: load the model, mesh its boundary (or run marching cubes), write one mesh file."""
    from ..models import load as load_model
    from ..io import write_mesh
    from ..meshing import marching_cubes_mesh, validity
    from ..pipeline import extract_mesh, prepare_outdir

    output = Path(args.output)
    if args.uv and output.suffix.lower() != ".obj":
        raise PcflowError(f"--uv writes texture coordinates per face corner, which only OBJ holds; got {output}")
    if args.uv and args.marching_cubes:
        raise PcflowError("--uv needs the latent surface's mesh: a marching-cubes mesh has no texture chart")
    prepare_outdir(output.parent, [output.name], overwrite=args.overwrite, inputs=(args.model,))
    model = load_model(args.model, device=args.device)
    if args.marching_cubes:
        if model.n_features_in_ != 3:
            raise PcflowError(f"a mesh needs a 3-D model, this one has {model.n_features_in_} features")
        mesh = marching_cubes_mesh(model, coverage=args.coverage, resolution=args.marching_cubes)
        uv, checks = None, validity(mesh)
    else:
        boundary, checks = extract_mesh(model, mesh_options(args))
        mesh, uv = boundary.mesh, boundary.face_uv if args.uv else None
    write_mesh(output, mesh, uv=uv)
    say(args, f"wrote {output}: {checks['n_vertices']} vertices, {checks['n_faces']} faces, "
              f"watertight {checks['watertight']}, volume {checks['volume']:.6g}")
    return 0
