"""The paper's 2D experiments (Table 2, Figures 1 and 7): OneFlow against LL-Flow, boundary length and region area.

Each model holds 1 - alpha of its training points inside the preimage of a latent disc. The region's area comes from
the estimator (`volume_`: closed form for NICE, Monte Carlo for the general flow); the boundary length is the length
of the latent circle of radius `radius_` mapped through the inverse flow, sampled densely.

Usage:
    python scripts/paper_2d.py                      # full run (about 10 minutes on 2 CPU cores)
    python scripts/paper_2d.py --quick --out /tmp/q
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS, machine, markdown_table, mean_std, outdir, set_threads, timed, write_csv, write_json,
)

from pcflow import PAPER_2D, LLFlow, OneFlow  # noqa: E402

METHODS = {"OneFlow": OneFlow, "LL-Flow": LLFlow}
N_BOUNDARY = 20_000  # latent circle samples for the boundary length


# ------------------------------------------------------------------------------------------------------------------
# datasets (our reading of the paper's descriptions; the generators are not published with the paper)


def two_moons(n, rng):
    from sklearn.datasets import make_moons

    X, _ = make_moons(n, noise=0.05, random_state=int(rng.integers(2**31)))
    return X, np.zeros(n, dtype=bool)


def big_uniform(n, rng):
    return rng.uniform(-2.0, 2.0, size=(n, 2)), np.zeros(n, dtype=bool)


def two_blobs(n, rng):
    """98% of the points in a wide blob, 2% in a small far one (the paper's Figure 1)."""
    n_big = int(round(0.98 * n))
    big = rng.normal(size=(n_big, 2)) * 0.5
    small = rng.normal(size=(n - n_big, 2)) * 0.1 + 4.0
    minor = np.r_[np.zeros(n_big, dtype=bool), np.ones(n - n_big, dtype=bool)]
    return np.vstack([big, small]), minor


def diverse_blobs(n, rng):
    """Four equally weighted Gaussian blobs with standard deviations 0.1, 0.3, 0.6 and 1.0."""
    centres = np.array([[-3.0, 3.0], [3.0, 3.0], [-3.0, -3.0], [3.0, -3.0]])
    stds = np.array([0.1, 0.3, 0.6, 1.0])
    which = rng.integers(4, size=n)
    return centres[which] + rng.normal(size=(n, 2)) * stds[which, None], np.zeros(n, dtype=bool)


DATASETS = {"Two Moons": two_moons, "Big Uniform": big_uniform, "Two Blobs": two_blobs,
            "Diverse Blobs": diverse_blobs}


# ------------------------------------------------------------------------------------------------------------------
# region measures


def boundary_curve(model, n: int = N_BOUNDARY) -> np.ndarray:
    """(n + 1, 2) closed polyline: the latent circle of radius `radius_` mapped through the inverse flow."""
    angles = np.linspace(0.0, 2.0 * np.pi, n + 1)
    circle = model.radius_ * np.column_stack([np.cos(angles), np.sin(angles)])
    return model.inverse_transform(circle)


def boundary_length(curve: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(curve, axis=0), axis=1).sum())


def shoelace_area(curve: np.ndarray) -> float:
    x, y = curve[:, 0], curve[:, 1]
    return float(abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])) / 2.0)


# ------------------------------------------------------------------------------------------------------------------
# runs


def run(args) -> tuple[list[dict], dict]:
    rows, curves = [], {}
    for dataset, make in DATASETS.items():
        if args.datasets and dataset not in args.datasets:
            continue
        for seed in range(args.seeds):
            X, minor = make(args.n, np.random.default_rng(seed))
            for flow in args.flows:
                for method, estimator in METHODS.items():
                    model = estimator(alpha=args.alpha, flow=flow, epochs=args.epochs,
                                    patience=args.patience, random_state=seed, **PAPER_2D)
                    _, seconds = timed(model.fit, X)
                    curve = boundary_curve(model)
                    inside = model.predict(X) == 1
                    rows.append({
                        "dataset": dataset, "flow": flow, "method": method, "seed": seed, "n": len(X),
                        "boundary_length": boundary_length(curve), "volume": model.volume_,
                        "volume_stderr": model.volume_stderr_, "polygon_area": shoelace_area(curve),
                        "coverage": float(inside.mean()),
                        "minor_outside": float((~inside[minor]).mean()) if minor.any() else float("nan"),
                        "epochs_run": model.n_iter_, "time_s": seconds,
                    })
                    if seed == 0:
                        curves[(dataset, flow, method)] = (X, curve)
            print(f"{dataset} seed {seed}: " + ", ".join(
                f"{r['method']}/{r['flow']} L {r['boundary_length']:.2f} V {r['volume']:.2f}"
                for r in rows if r["dataset"] == dataset and r["seed"] == seed), flush=True)
    return rows, curves


def summarise(rows) -> list[dict]:
    summary = []
    for key in dict.fromkeys((r["dataset"], r["flow"], r["method"]) for r in rows):
        sel = [r for r in rows if (r["dataset"], r["flow"], r["method"]) == key]
        entry = {"dataset": key[0], "flow": key[1], "method": key[2], "seeds": len(sel)}
        for name in ("boundary_length", "volume", "coverage", "minor_outside", "time_s"):
            entry[f"{name}_mean"], entry[f"{name}_std"] = mean_std([r[name] for r in sel])
        summary.append(entry)
    return summary


def plot_boundaries(curves, flows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(k[0] for k in curves))
    fig, axes = plt.subplots(len(flows), len(datasets), figsize=(3.2 * len(datasets), 3.2 * len(flows)),
                             squeeze=False)
    colours = {"OneFlow": "tab:red", "LL-Flow": "tab:blue"}
    for i, flow in enumerate(flows):
        for j, dataset in enumerate(datasets):
            ax = axes[i, j]
            for method in METHODS:
                if (dataset, flow, method) not in curves:
                    continue
                X, curve = curves[(dataset, flow, method)]
                ax.plot(curve[:, 0], curve[:, 1], color=colours[method], lw=1.5, label=method)
            ax.scatter(X[:, 0], X[:, 1], s=1, c="k", alpha=0.3, linewidths=0)
            ax.set_title(f"{dataset} ({'NICE' if flow == 'nice' else 'general'})", fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
            ax.tick_params(labelsize=7)
            if i == 0 and j == 0:
                ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary_markdown(summary, args) -> str:
    table = []
    for r in summary:
        table.append({
            "dataset": r["dataset"], "flow": r["flow"], "method": r["method"],
            "length": f"{r['boundary_length_mean']:.3f} +- {r['boundary_length_std']:.3f}",
            "volume": f"{r['volume_mean']:.3f} +- {r['volume_std']:.3f}",
            "coverage": r["coverage_mean"], "minor": r["minor_outside_mean"], "time": r["time_s_mean"],
        })
    lines = [
        "# Paper Table 2 and Figures 1, 7: 2D regions",
        "",
        f"Settings: the paper's 2D architecture {PAPER_2D}, alpha {args.alpha}, {args.epochs} epochs "
        f"({'all of them' if args.patience is None else f'early stop after {args.patience} without gain'}), "
        f"n = {args.n} points, {args.seeds} seeds (mean +- standard deviation).",
        "Datasets (our reading; the paper does not publish its generators): Two Moons = scikit-learn make_moons, "
        "noise 0.05; Big Uniform = uniform on [-2, 2]^2 (area 16; the smallest region holding 95% has area 15.2); "
        "Two Blobs = 98% N(0, 0.5^2 I) + 2% N((4, 4), 0.1^2 I); Diverse Blobs = four equal blobs with standard "
        "deviations 0.1, 0.3, 0.6, 1.0.",
        "Length: the latent circle of radius radius_ through the inverse flow (20,000 samples). Volume: the area of "
        "the region (closed form for NICE, Monte Carlo for the general flow). Coverage: share of the training points "
        "inside. Minor outside: share of the small blob (Two Blobs) left outside the region.",
        "",
        markdown_table(table, ["dataset", "flow", "method", "length", "volume", "coverage", "minor", "time"],
                       ["dataset", "flow", "method", "boundary length", "region volume", "coverage",
                        "minor blob outside", "fit time (s)"]),
        "",
        "![OneFlow and LL-Flow boundaries](paper_2d_boundaries.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "paper_2d")
    parser.add_argument("--quick", action="store_true", help="smoke run: Two Blobs, one seed, NICE, 2 epochs")
    parser.add_argument("--datasets", nargs="*", choices=list(DATASETS))
    parser.add_argument("--flows", nargs="*", default=["nice", "general"], choices=["nice", "general"])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience in epochs (default: train every epoch, as the paper)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the small flows here are fastest single-threaded)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.datasets, args.flows, args.n, args.epochs, args.seeds = ["Two Blobs"], ["nice"], 1000, 2, 1
    out = outdir(args.out)
    warnings.filterwarnings("ignore", category=UserWarning)

    rows, curves = run(args)
    summary = summarise(rows)
    write_csv(out / "paper_2d.csv", rows)
    write_csv(out / "paper_2d_summary.csv", summary)
    plot_boundaries(curves, args.flows, out / "paper_2d_boundaries.png")
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(out / "results.json", {"config": config,
                                      "machine": machine(), "runs": rows, "summary": summary})
    (out / "summary.md").write_text(summary_markdown(summary, args))
    print(f"wrote {out}/summary.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
