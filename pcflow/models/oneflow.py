"""OneFlow (Maziarka et al.): the flow whose latent ball's preimage is the smallest region holding 1 - alpha of the
data."""

from __future__ import annotations

from .base import FlowDetector, check_positive_int

#: Architectures of the paper: 2D experiments (4 couplings, hidden 16) and tabular experiments (hidden 256).
PAPER_2D = {"n_couplings": 4, "hidden_features": 16, "batch_size": 1000, "lr": 1e-3}
PAPER_TABULAR = {"n_couplings": 4, "hidden_features": 256, "batch_size": 1000, "lr": 1e-3}


class OneFlow(FlowDetector):
    """One-class normalizing flow (OneFlow, Maziarka et al.): the smallest-volume region holding 1 - alpha of the data.

    A flow f is trained so that the latent ball B(0, R) holds a share 1 - alpha of the training points while the
    volume of its preimage f^-1(B(0, R)) is minimal. R is the Bernstein estimate of the (1 - alpha) quantile of
    ||f(x)|| over each batch. After training, the region's radius is the (1 - alpha) quantile of the latent radii of
    the training set, and a point's score is minus its latent radius. Any dimension D >= 2. `LLFlow` trains the same
    flow by maximum likelihood (the paper's baseline); `SurfaceFlow` refines a OneFlow into a surface through a 3D scan.

    Args:
        alpha: share of the training data left outside the region, 0 < alpha < 1.
        flow: ``'nice'`` (additive couplings and a diagonal scaling: constant Jacobian, closed-form volume) or
            ``'general'`` (affine couplings: the paper's OneFlow-Gen, Monte-Carlo volume).
        n_couplings: number of coupling layers.
        hidden_features: width of the hidden layers of each coupling network.
        n_hidden_layers: number of hidden layers of each coupling network.
        epochs: maximum number of passes over the training data.
        batch_size: points per optimisation step (the Bernstein estimate uses the whole batch).
        lr: Adam learning rate (cosine-annealed to a tenth over the epochs).
        patience: stop when the epoch loss has not improved by `tol` for this many epochs; None trains all epochs.
        tol: least improvement of the epoch loss that counts, in loss units (log volume).
        n_volume_samples: Monte-Carlo samples per step for the volume of a general flow.
        normalize: ``'standard'`` (per-feature mean and standard deviation), ``'isotropic'`` (mean and one common
            scale, which keeps shapes undistorted: the choice for 3D clouds) or ``'none'``.
        dtype: ``'float32'`` (fast) or ``'float64'``.
        device: torch device to train and score on, e.g. ``'cpu'``, ``'cuda'``; ``'auto'`` takes a GPU if present.
        random_state: seed for initialisation, shuffling and Monte-Carlo samples: an int, a numpy ``RandomState`` or
            ``Generator`` (a seed is drawn from it) or None (one is drawn); the seed used is kept in `seed_`.
        progress: show a progress bar (tqdm) over the epochs.

    Attributes:
        flow_: the trained `Flow`, acting on normalised inputs.
        center_, scale_: (D,) float64 arrays; normalised x = (x - center_) / scale_.
        radius_: latent radius of the region.
        offset_: threshold of `score_samples`, -radius_, so that ``decision_function = score_samples - offset_``.
        volume_, volume_stderr_: region volume in input units and its Monte-Carlo standard error (0 when exact).
        constant_jacobian_: whether the region volume is in closed form.
        history_: dict of per-epoch lists ``loss``, ``radius`` (mean Bernstein radius) and ``lr`` (no wall-clock
            times, which would differ run by run: the fit's time is logged).
        n_iter_: epochs run. n_features_in_: D. n_samples_fit_: N. seed_: the seed used. feature_names_in_: the
            column names, when fit was given a data frame with string column names (not kept by `save`).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2))
        >>> model = OneFlow(alpha=0.1, epochs=5, random_state=0).fit(X)
        >>> labels = model.predict(X)
        >>> print(f"{(labels == 1).mean():.2f}")
        0.90
    """

    _fit_loss = "volume"
    _stage = "envelope fit"

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        flow: str = "nice",
        n_couplings: int = 6,
        hidden_features: int = 64,
        n_hidden_layers: int = 2,
        epochs: int = 100,
        batch_size: int = 1000,
        lr: float = 1e-3,
        patience: int | None = 10,
        tol: float = 1e-3,
        n_volume_samples: int = 256,
        normalize: str = "standard",
        dtype: str = "float32",
        device: str = "cpu",
        random_state: int | None = None,
        progress: bool = False,
    ):
        self.alpha = alpha
        self.flow = flow
        self.n_couplings = n_couplings
        self.hidden_features = hidden_features
        self.n_hidden_layers = n_hidden_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.tol = tol
        self.n_volume_samples = n_volume_samples
        self.normalize = normalize
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.progress = progress

    def _check_params(self) -> None:
        super()._check_params()
        check_positive_int(self, ("n_volume_samples",))
