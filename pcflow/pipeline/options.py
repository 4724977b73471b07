"""Settings of a 3D fit and of its boundary mesh, as the command line exposes them, with each mode's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import OneFlow, SurfaceFlow
from ..errors import PcflowError

#: What each fitting mode trains: ``surface`` fits the scanned surface, ``envelope`` the paper's smallest solid
#: region holding 1 - alpha of the points (the bounding region), ``auto`` (the default) fits the surface and falls
#: back to the envelope when the cloud is an open scene (see `OPEN_SCENE_GAP`).
MODES = {
    # a surface fit's envelope stage only has to start the surface fit: 40 epochs (its cosine schedule over them) of
    # half as many, twice as large steps as an envelope fit's
    "surface": {"objective": "surface", "flow": "general", "n_couplings": 10, "hidden_features": 96, "epochs": 40,
                "batch_size": 2000, "lr": 2e-3},
    "envelope": {"objective": "volume", "flow": "nice", "n_couplings": 6, "hidden_features": 64, "epochs": 100,
                 "batch_size": 1000, "lr": 1e-3},
}
MODES["auto"] = MODES["surface"]

#: What a fast fit (``--fast``, `FitOptions.fast`) takes instead of a mode's defaults, where no setting is given: half
#: the envelope epochs and, in a surface fit from the sphere, at most 400 surface steps; a coarser surface in 55-70%
#: of the fit time (docs/benchmarks/speed.md).
FAST = {"surface": {"epochs": 20, "surface_steps": 400}, "envelope": {"epochs": 50}}
FAST["auto"] = FAST["surface"]
#: The most steps of a surface fit where neither `FitOptions.surface_steps` nor `FitOptions.fast` says otherwise:
#: SurfaceFlow's own default.
SURFACE_STEPS = SurfaceFlow().surface_steps

#: `FitOptions.genus`: a surface fit's genus, or ``'auto'``: 1, 2 or 3 where the training points need a surface with
#: that many handles (`pcflow.meshing.estimate_genus`), else 0.
GENERA = ("auto", 0, 1, 2, 3)

#: The input normalisation of a fit of each genus. The isotropic one keeps a shape undistorted; a torus's tube
#: stretches along its axis only, and a torus fit follows the points closer with each axis scaled by its spread
#: (docs/benchmarks/fit_settings.md); joined tori keep the isotropic one (with each axis scaled, no two tori fitted
#: the double torus and its fit fell back to genus 0).
GENUS_NORMALIZE = {0: "isotropic", 1: "standard", 2: "isotropic", 3: "isotropic"}

#: `FitOptions.latent`: a surface fit's latent surface (`pcflow.models.SurfaceFlow`'s `latent`: the sphere or tori,
#: or shaped like the data, of the fit's genus), or ``'auto'``: shaped where the training points enclose a volume
#: (`pcflow.meshing.estimate_genus`), else the sphere (`pcflow.pipeline.fit_cloud` sets it).
LATENTS = ("auto", "sphere", "shaped")


def genus_params(genus: int) -> dict:
    """The SurfaceFlow settings of a surface fit of `genus`: the genus and its normalisation (`GENUS_NORMALIZE`)."""
    return {"genus": genus, "normalize": GENUS_NORMALIZE[genus]}


#: ``auto`` mode takes a cloud for an open scene, and fits the envelope instead, when more than this share of the
#: fitted surface spans empty space (`pcflow.meshing.surface_gap`): at most 0.076 did on the scanned objects measured
#: (the torus's membrane), 0.21 to 0.91 on the two table-top scans.
OPEN_SCENE_GAP = 0.15


@dataclass
class FitOptions:
    """Settings of a 3D fit, as the command line exposes them; None takes the mode's default (`MODES`)."""

    alpha: float = 0.05
    mode: str = "auto"
    flow: str | None = None
    epochs: int | None = None
    surface_steps: int | None = None
    seed: int = 0
    device: str = "cpu"
    max_train_points: int | None = 20_000
    n_couplings: int | None = None
    hidden_features: int | None = None
    progress: bool = False
    fast: bool = False  # a shorter fit where epochs and surface_steps are None (`FAST`)
    genus: int | str = "auto"  # of a surface fit: 0 to 3, or "auto" (`pcflow.pipeline.fit_cloud` estimates it)
    latent: str = "auto"  # of a genus-0 surface fit: "sphere", "shaped", or "auto" (`LATENTS`)

    def resolved(self, name: str):
        """The setting `name`, taking the mode's default where it is None or not a field (``objective``, ``batch_size``,
        ``lr``): its `FAST` setting in a fast fit, else `MODES`'s (`SURFACE_STEPS` for ``surface_steps``)."""
        if self.mode not in MODES:
            raise PcflowError(f"mode must be one of {', '.join(map(repr, MODES))}, got {self.mode!r}")
        if self.genus not in GENERA:
            raise PcflowError(f"genus must be one of {', '.join(map(repr, GENERA))}, got {self.genus!r}")
        if self.latent not in LATENTS:
            raise PcflowError(f"latent must be one of {', '.join(map(repr, LATENTS))}, got {self.latent!r}")
        value = getattr(self, name, None)
        if value is not None:
            return value
        if self.fast and name in FAST[self.mode]:
            return FAST[self.mode][name]
        return SURFACE_STEPS if name == "surface_steps" else MODES[self.mode][name]

    def estimator(self) -> OneFlow:
        """An unfitted estimator with these settings: a SurfaceFlow for the surface objective (of genus 0 where
        `genus` is ``'auto'``, normalised as `genus_params` says, with the sphere where `latent` is ``'auto'``; a
        `surface_steps` given also bounds the fits from tori and from a shaped surface), else a OneFlow with the
        isotropic normalisation that keeps shapes undistorted."""
        surface = self.resolved("objective") == "surface"
        genus = 0 if self.genus == "auto" else self.genus
        latent = "sphere" if self.latent == "auto" else self.latent
        return (SurfaceFlow if surface else OneFlow)(
            alpha=self.alpha,
            flow=self.resolved("flow"),
            epochs=self.resolved("epochs"),
            batch_size=self.resolved("batch_size"),
            lr=self.resolved("lr"),
            **({"surface_steps": self.resolved("surface_steps"), "latent": latent, **genus_params(genus),
                **({} if self.surface_steps is None else {"torus_steps": self.surface_steps,
                                                         "shaped_steps": self.surface_steps})} if surface
               else {"normalize": "isotropic"}),
            n_couplings=self.resolved("n_couplings"),
            hidden_features=self.resolved("hidden_features"),
            device=self.device,
            random_state=self.seed,
            progress=self.progress,
        )


@dataclass
class MeshOptions:
    """Settings of the boundary mesh extraction."""

    subdivisions: int = 3
    tolerance: float | None = None
    max_faces: int = 200_000
    coverage: float | None = None
    formats: tuple[str, ...] = ()
    snap: bool = True  # a surface fit's own mesh moved onto its training inliers (`pcflow.meshing.boundary_mesh`)
    uv: bool = False  # also write mesh_uv.obj, the mesh with the sphere chart's texture coordinates
