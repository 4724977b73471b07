"""The argument groups the subcommands share: the model, the mesh, the cloud outputs and the process settings."""

from __future__ import annotations

import argparse


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """The model's settings (group ``model``) and ``--verbose``."""
    group = parser.add_argument_group("model")
    group.add_argument("--alpha", type=float, default=0.05,
                       help="share of points called outliers, 0 < alpha < 1 (default 0.05: coverage 95%%)")
    group.add_argument("--mode", choices=("auto", "surface", "envelope"), default="auto",
                       help="surface: fit the scanned surface, flag points far from it; envelope: the smallest solid "
                            "region holding 1 - alpha of the points (the paper's OneFlow, faster); auto (default): "
                            "surface, or envelope when the cloud is an open scene (over 15%% of the fitted surface "
                            "far from every point)")
    group.add_argument("--flow", choices=("nice", "general"), default=None,
                       help="nice: additive couplings, closed-form volume (envelope default); general: affine "
                            "couplings (surface default)")
    group.add_argument("--epochs", type=int, default=None,
                       help="most passes over the training points of the envelope fit (default: 40 as the first "
                            "stage of a surface fit, 100 for an envelope fit; half as many with --fast)")
    group.add_argument("--surface-steps", type=int, default=None,
                       help="most optimisation steps of the surface fit; it stops earlier once its loss stops "
                            "falling (default 600 from the sphere, 400 with --fast; 300 from tori; 25 from a shaped "
                            "latent surface)")
    group.add_argument("--fast", action="store_true",
                       help="a shorter fit from the sphere, 55-70%% of the fit time, with a coarser surface: "
                            "half the envelope epochs, at most 400 surface steps (--epochs and --surface-steps still "
                            "set their own)")
    group.add_argument("--genus", choices=("auto", "0", "1", "2", "3"), default="auto",
                       help="genus of a surface fit's mesh: 0, or 1 to 3 for an object with that many handles (the "
                            "preimage of a latent surface of that genus: shaped like the points, or with --latent "
                            "sphere a torus or joined tori); auto (default): 1 to 3 where the points enclose a volume "
                            "with that many handles")
    group.add_argument("--latent", choices=("auto", "sphere", "shaped"), default="auto",
                       help="latent surface of a surface fit: the sphere (fitted tori for genus 1 to 3), or "
                            "shaped like the points (a closed surface of the fit's genus around them that the flow "
                            "refines in at most 25 steps, with no envelope stage); auto (default): shaped where the "
                            "points enclose a volume")
    group.add_argument("--couplings", type=int, default=None,
                       help="number of coupling layers (default: 10 for a surface fit, 6 for an envelope fit)")
    group.add_argument("--hidden", type=int, default=None,
                       help="width of the coupling networks (default: 96 for a surface fit, 64 for an envelope fit)")
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    group.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, auto (default cpu)")
    group.add_argument("--max-train-points", type=int, default=20_000,
                       help="train on a random subset of this many points, score every point (default 20000; 0: all)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log each stage (reading, fitting, scoring, meshing, writing) with its time to stderr")


def add_mesh_arguments(parser: argparse.ArgumentParser) -> None:
    """The boundary mesh's settings (group ``mesh``)."""
    group = parser.add_argument_group("mesh")
    group.add_argument("--subdivisions", type=int, default=3,
                       help="icosphere subdivisions before adaptive refinement (default 3: 1280 faces; a shaped "
                            "latent surface is meshed at its grid's spacing)")
    group.add_argument("--tolerance", type=float, default=None,
                       help="longest mesh edge allowed, in input units (default: 2%% of the bounding-box diagonal)")
    group.add_argument("--max-faces", type=int, default=200_000, help="face budget of the refinement (default 200000)")
    group.add_argument("--coverage", type=float, default=None,
                       help="mesh the boundary of the region holding this share of the training points (default: "
                            "the fitted surface of a surface fit, 1 - alpha of an envelope fit)")
    group.add_argument("--no-snap", action="store_true",
                       help="keep a surface fit's mesh the exact image of the latent surface (by default its vertices "
                            "are moved along their normals onto the training inliers, without folds or crossings)")


def add_reconstruct_arguments(parser: argparse.ArgumentParser) -> None:
    """What `reconstruct` and `demo` share: the model, the mesh, the extra outputs and the process settings."""
    add_fit_arguments(parser)
    add_mesh_arguments(parser)
    parser.add_argument("--format", nargs="+", choices=("stl", "off", "glb"), default=(),
                        help="extra mesh formats beside mesh.ply and mesh.obj")
    parser.add_argument("--uv", action="store_true",
                        help="also write mesh_uv.obj: the mesh with texture coordinates of the latent chart per face "
                             "corner, for texturing (trimesh and Open3D split its vertices at the chart's seam, "
                             "meshio cannot read it; mesh.obj and mesh.ply stay watertight for them)")
    parser.add_argument("--no-preview", action="store_true", help="do not render preview.png")
    add_common_arguments(parser)


def add_cloud_output_arguments(parser: argparse.ArgumentParser, *, denoise: bool) -> None:
    """``--classify`` and ``--scores`` (group ``cloud output``), worded for `denoise` or for `reconstruct`."""
    group = parser.add_argument_group("cloud output")
    if denoise:
        group.add_argument("--classify", action="store_true",
                           help="write every point to OUTPUT instead of dropping the outliers, as PDAL's "
                                "filters.outlier does: outliers get ASPRS class 7 (low point, noise), the others "
                                "keep their classification (1, unclassified, when the input has none); the "
                                "classification field is added where absent")
    else:
        group.add_argument("--classify", action="store_true",
                           help="also write classified.ply: every point, outliers with ASPRS class 7 (low point, "
                                "noise), the others keeping their classification (1, unclassified, when the input "
                                "has none)")
    group.add_argument("--scores", action="store_true",
                       help="add each point's outlier score as the float32 vertex property outlier_score (an "
                            "extra-bytes dimension in LAS): minus the model's decision function, offset_ - "
                            "score_samples; higher is more outlying and the points above 0 are the outliers")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quiet``, ``--overwrite`` and ``--threads``."""
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch in this process (default: torch's choice; 1 is often fastest "
                             "when other jobs share the cores)")
