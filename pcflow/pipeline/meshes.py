"""The boundary mesh of a fitted 3D model: extracted, checked, and written in the formats asked for."""

from __future__ import annotations

from pathlib import Path

from ..errors import PcflowError
from ..models import OneFlow
from .options import MeshOptions
from .timing import Timer


def extract_mesh(model: OneFlow, options: MeshOptions, timer: Timer | None = None):
    """The boundary mesh of a fitted 3D model and its validity checks: (BoundaryMesh, validity dict)."""
    from ..meshing import boundary_mesh, validity

    timer = timer or Timer()
    if model.n_features_in_ != 3:
        raise PcflowError(f"a mesh needs a 3-D model, this one has {model.n_features_in_} features")
    with timer("mesh"):
        boundary = boundary_mesh(
            model,
            coverage=options.coverage,
            subdivisions=options.subdivisions,
            tolerance=options.tolerance,
            max_faces=options.max_faces,
            snap=options.snap,
        )
    with timer("mesh_checks"):
        checks = validity(boundary.mesh, check_intersections=False)
    # boundary_mesh already counted the self-intersections of the final triangulation
    checks["self_intersections"] = boundary.info["self_intersections"]
    return boundary, checks


def write_meshes(boundary, outdir: Path, stem: str, formats, *, uv: bool = False) -> list[str]:
    """Writes the boundary mesh into `outdir`; returns the names written.

    `stem`.ply and `stem`.obj always, `stem`.<fmt> for each extra format, without texture coordinates, so that
    Open3D, trimesh and meshio open them watertight (see `pcflow.io.write_mesh` for each format's normals and
    readers). With `uv` also `stem`_uv.obj, the same vertices with the sphere chart's texture coordinates per face
    corner (`BoundaryMesh.face_uv`), for texturing: trimesh and Open3D split its vertices at the chart's seam, and
    meshio cannot read texture coordinates per corner.
    """
    from ..io import write_mesh

    names = write_mesh_files(boundary.mesh, outdir, stem, formats)
    if uv:
        path = outdir / f"{stem}_uv.obj"
        write_mesh(path, boundary.mesh, uv=boundary.face_uv)
        names.append(path.name)
    return names


def write_mesh_files(mesh, outdir: Path, stem: str, formats) -> list[str]:
    """Writes a `trimesh.Trimesh` into `outdir` as `stem`.ply, `stem`.obj and `stem`.<fmt> for each extra format;
    returns the names written."""
    from ..io import write_mesh

    names = []
    for suffix in dict.fromkeys(("ply", "obj", *formats)):
        write_mesh(outdir / f"{stem}.{suffix}", mesh)
        names.append(f"{stem}.{suffix}")
    return names
