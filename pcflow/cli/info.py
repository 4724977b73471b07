"""`pcflow info`: what a point cloud, mesh or model file holds, as text or as one JSON object."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    """Adds `info` to the subcommands."""
    p = subparsers.add_parser(
        "info", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="describe a point cloud, mesh or model file",
        description="Print what a file holds: for a cloud its format, point count, properties with their types, "
                    "bounds, typical spacing (median nearest-neighbour distance over a sample) and whether it looks "
                    "like an object or a scene (the share of points on its largest plane); for a mesh also its "
                    "faces, watertightness, components, Euler characteristic and genus; for a model its settings.",
        epilog="example:\n  pcflow info scan.pcd\n  pcflow info out/mesh.ply --json\n  pcflow info out/model.pt",
    )
    p.add_argument("input", help="point cloud, mesh or model file")
    p.add_argument("--json", action="store_true", help="print the same facts as one JSON object")
    p.set_defaults(func=cmd_info, quiet=False)


def cmd_info(args) -> int:
    """`pcflow info`: a model's settings and fit, or a cloud's (and a mesh's) facts; no torch for a cloud."""
    path = Path(args.input)
    if path.suffix.lower() == ".pt":
        info = _model_info(path)
    else:
        from ..io import describe

        info = describe(path)
        if info["is_mesh"]:
            from ..io import read_mesh
            from ..meshing import validity

            info["mesh"] = validity(read_mesh(path), check_intersections=False)
            del info["mesh"]["self_intersections"]  # not counted here: an R-tree pass over every face pair
    print(json.dumps(info, indent=2, default=str) if args.json else _info_text(info))
    return 0


def _model_info(path: Path) -> dict:
    from ..models import load as load_model

    model = load_model(path)
    info = {
        "path": str(path),
        "format": "pcflow model",
        "params": model.get_params(),
        "n_features": model.n_features_in_,
        "n_samples_fit": model.n_samples_fit_,
        "epochs_run": model.n_iter_,
        **({"surface_steps_run": model.n_surface_steps_} if model.objective == "surface" else {}),
        "radius": model.radius_,
        "volume": model.volume_,
        "volume_stderr": model.volume_stderr_,
    }
    if model.objective == "surface":
        info["distance_threshold"] = model.distance_threshold_
        if model.n_features_in_ == 3:
            from ..meshing import surface_gap

            info["surface_gap"] = surface_gap(model)
    return info


def _info_text(info: dict) -> str:
    """`pcflow info` for a reader: the facts of `describe` (or a model's), one per line."""
    if info["format"] == "pcflow model":
        params = info.pop("params")
        lines = [f"{key}: {value}" for key, value in info.items()]
        return "\n".join(lines + ["params:"] + [f"  {key}: {value!r}" for key, value in params.items()])
    kind = "vertices" if info["is_mesh"] else "points"
    lines = [f"{info['path']}: {info['format']}, {info['n_points']} {kind}"
             + (f" ({info['n_nonfinite']} with NaN or infinite coordinates)" if info["n_nonfinite"] else "")]
    if info["organized"]:
        lines.append(f"organized: {info['organized'][0]} x {info['organized'][1]}")
    lines.append("properties: " + ", ".join(f"{name} {kind_}" for name, kind_ in info["fields"].items()))
    if info["bounds"]:
        low, high = info["bounds"]
        lines.append(f"bounds{'min':>14} {'max':>14} {'size':>14}")
        rows = zip("xyz", low, high, info["size"])
        lines += [f"  {axis}   {a:14.6g} {b:14.6g} {c:14.6g}" for axis, a, b, c in rows]
    spacing = info["spacing"]
    if spacing:
        lines.append(f"spacing: {spacing['median_nn']:.4g} (median distance to the nearest neighbour, "
                     f"{spacing['n_sampled']} {kind} sampled)")
    lines += _shape_lines(info["shape"])
    mesh = info.get("mesh")
    if mesh:
        genus = "" if mesh["genus"] is None else f", genus {mesh['genus']}"
        lines.append(f"mesh: {mesh['n_vertices']} vertices used, {mesh['n_faces']} faces, "
                     f"watertight {'yes' if mesh['watertight'] else 'no'}, components {mesh['n_components']}, "
                     f"euler {mesh['euler']}{genus}, volume {mesh['volume']:.6g}")
    return "\n".join(lines)


def _shape_lines(shape: dict | None) -> list[str]:
    """The lines on whether a cloud looks like an object or a scene, and the plane test that says so."""
    if not shape:
        return []
    from ..io import SCENE_PLANE_SHARE

    share = f"{shape['plane_share']:.0%} of the points"
    return [
        f"looks like: a scene ({share} on one plane: a floor, table or wall)" if shape["kind"] == "scene"
        else f"looks like: an object (the largest plane holds only {share})",
        f"  plane test: {shape['n_sampled']} points sampled, on a plane within {shape['tolerance']:.3g}"
        f" of it, a scene from {SCENE_PLANE_SHARE:.0%} on one plane",
    ]
