"""The paper's Table 1 (Thyroid, KDDCUP99) and Figure 8 (effect of alpha), beside scikit-learn detectors.

Protocol of Zong et al. (DAGMM) and Wang et al. (MQT), which the paper follows: train on a random half of the
normal data; test on the other half plus every anomaly; flag the share of test points that are anomalies (the
points whose score is above the (1 - ratio) percentile of the test scores); report F1 (positive = anomaly) as the
mean and standard deviation over seeds. KDDCUP99 (10% file): the "normal." connections are the anomaly class, the
three categorical columns are one-hot encoded and every column is min-max scaled.

Usage:
    python scripts/paper_tabular.py                    # full run (about 15 minutes on 2 CPU cores)
    python scripts/paper_tabular.py --quick --out /tmp/q
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA, RESULTS, machine, markdown_table, mean_std, outdir, set_threads, timed, write_csv, write_json,
)

from pcflow import PAPER_TABULAR, LLFlow, OneFlow  # noqa: E402
from pcflow.metrics import outlier_scores  # noqa: E402

#: F1 reported in the paper's Table 1.
PAPER_F1 = {("thyroid", "OneFlow"): 0.7634, ("thyroid", "OneFlow-Gen"): 0.7097,
            ("kddcup", "OneFlow"): 0.9702, ("kddcup", "OneFlow-Gen"): 0.9712}
FLOWS = {"OneFlow": {"flow": "nice", "estimator": OneFlow},
         "OneFlow-Gen": {"flow": "general", "estimator": OneFlow},
         "LL-Flow": {"flow": "nice", "estimator": LLFlow}}
PEERS = ("IsolationForest", "OneClassSVM", "LOF")


# ------------------------------------------------------------------------------------------------------------------
# data


def load_thyroid(data: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    mat = loadmat(data / "tabular" / "thyroid.mat")
    return np.asarray(mat["X"], dtype=np.float64), np.asarray(mat["y"]).ravel().astype(bool)


def load_kddcup(data: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(data / "tabular" / "kddcup.data_10_percent.gz", "rt") as handle:
        table = np.array(list(csv.reader(handle)), dtype=object)
    labels = table[:, 41] == "normal."  # DAGMM: the 20% "normal" traffic is the anomaly class
    columns = []
    for j in range(41):
        if j in (1, 2, 3):
            values = table[:, j].astype(str)
            columns += [(values == level).astype(np.float64) for level in np.unique(values)]
        else:
            columns.append(table[:, j].astype(np.float64))
    X = np.column_stack(columns)
    low, high = X.min(axis=0), X.max(axis=0)
    X = (X - low) / np.where(high > low, high - low, 1.0)
    return X, labels


LOADERS = {"thyroid": load_thyroid, "kddcup": load_kddcup}


def split(y: np.ndarray, seed: int, max_train: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Indices of the training half of the normal data (subsampled to max_train) and of the test set."""
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(~y))
    half = len(normal) // 2
    train, test = normal[:half], np.concatenate([normal[half:], np.flatnonzero(y)])
    n_train_half = len(train)
    if max_train is not None and len(train) > max_train:
        train = train[:max_train]
    return np.sort(train), np.sort(test), n_train_half


# ------------------------------------------------------------------------------------------------------------------
# methods: each returns an anomaly score on the test set (higher = more anomalous)


def flow_scores(Xtr, Xte, seed, args, estimator=OneFlow, **kwargs):
    params = {**PAPER_TABULAR, "alpha": args.alpha, "epochs": args.epochs, "patience": args.patience,
              "random_state": seed, **kwargs}
    model = estimator(**params).fit(Xtr)
    return model.latent_radius(Xte), {"epochs_run": model.n_iter_}


def iforest_scores(Xtr, Xte, seed, args):
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=seed).fit(Xtr).score_samples(Xte), {}


def ocsvm_scores(Xtr, Xte, seed, args):
    from sklearn.svm import OneClassSVM

    Xtr = subsample(Xtr, args.max_train_kernel, seed)
    return -OneClassSVM(nu=0.1, gamma="scale").fit(Xtr).score_samples(Xte), {"n_train_used": len(Xtr)}


def lof_scores(Xtr, Xte, seed, args):
    from sklearn.neighbors import LocalOutlierFactor

    Xtr = subsample(Xtr, args.max_train_kernel, seed)
    return -LocalOutlierFactor(n_neighbors=20, novelty=True).fit(Xtr).score_samples(Xte), {"n_train_used": len(Xtr)}


PEER_FUNCTIONS = dict(zip(PEERS, (iforest_scores, ocsvm_scores, lof_scores)))


def subsample(X, limit, seed):
    if limit is None or len(X) <= limit:
        return X
    rng = np.random.default_rng(seed + 1)
    return X[np.sort(rng.choice(len(X), limit, replace=False))]


def evaluate(scores: np.ndarray, labels: np.ndarray) -> dict:
    """F1 with the protocol's threshold: flag the test points above the (1 - ratio) percentile of the scores."""
    ratio = labels.mean()
    threshold = np.percentile(scores, 100.0 * (1.0 - ratio))
    result = outlier_scores(labels, keep_mask=scores <= threshold, scores=scores)
    return {k: result[k] for k in ("precision", "recall", "f1", "roc_auc", "average_precision")}


# ------------------------------------------------------------------------------------------------------------------
# runs


def run_dataset(name, X, y, args, methods) -> list[dict]:
    rows = []
    seeds = args.seeds if name == "thyroid" else args.kdd_seeds
    max_train = None if name == "thyroid" else args.kdd_max_train
    for seed in range(seeds):
        train, test, n_half = split(y, seed, max_train)
        Xtr, Xte, yte = X[train], X[test], y[test]
        keep = Xtr.std(axis=0) > 0  # drop columns constant on the training set (OneFlow standardises)
        Xtr, Xte = Xtr[:, keep], Xte[:, keep]
        for method in methods:
            if method in FLOWS:
                (scores, extra), seconds = timed(flow_scores, Xtr, Xte, seed, args, **FLOWS[method])
            else:
                (scores, extra), seconds = timed(PEER_FUNCTIONS[method], Xtr, Xte, seed, args)
            row = {"dataset": name, "method": method, "seed": seed, "n_train_half": n_half, "n_train": len(Xtr),
                   "n_test": len(Xte), "test_anomaly_ratio": float(yte.mean()), "n_features": Xtr.shape[1],
                   "time_s": seconds, **extra, **evaluate(scores, yte)}
            rows.append(row)
            print(f"{name} seed {seed} {method}: F1 {row['f1']:.4f} ({seconds:.1f} s)", flush=True)
    return rows


def run_alpha(X, y, args, done: list[dict]) -> list[dict]:
    """Figure 8: OneFlow F1 on Thyroid against alpha (reusing the runs in `done` at alpha = args.alpha)."""
    rows = []
    for alpha in args.alphas:
        for seed in range(args.alpha_seeds):
            previous = [r for r in done if r["method"] == "OneFlow" and r["seed"] == seed and alpha == args.alpha]
            if previous:
                rows.append({**{k: previous[0][k] for k in ("dataset", "method", "seed", "time_s", "epochs_run",
                                                            "precision", "recall", "f1", "roc_auc",
                                                            "average_precision")}, "alpha": alpha})
                continue
            train, test, _ = split(y, seed, None)
            local = argparse.Namespace(**{**vars(args), "alpha": alpha})
            (scores, extra), seconds = timed(flow_scores, X[train], X[test], seed, local)
            rows.append({"dataset": "thyroid", "method": "OneFlow", "alpha": alpha, "seed": seed, "time_s": seconds,
                         **extra, **evaluate(scores, y[test])})
        print(f"alpha {alpha}: F1 {np.mean([r['f1'] for r in rows if r['alpha'] == alpha]):.4f}", flush=True)
    return rows


def summarise(rows) -> list[dict]:
    summary = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset):
            sel = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
            f1, f1_std = mean_std([r["f1"] for r in sel])
            auc, _ = mean_std([r["roc_auc"] for r in sel])
            summary.append({"dataset": dataset, "method": method, "seeds": len(sel), "f1_mean": f1, "f1_std": f1_std,
                            "roc_auc_mean": auc, "paper_f1": PAPER_F1.get((dataset, method), float("nan")),
                            "time_s_mean": float(np.mean([r["time_s"] for r in sel])),
                            "n_train": sel[0]["n_train"], "n_test": sel[0]["n_test"]})
    return summary


def plot_alpha(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = sorted(set(r["alpha"] for r in rows))
    stats = [mean_std([r["f1"] for r in rows if r["alpha"] == a]) for a in alphas]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.errorbar(alphas, [m for m, _ in stats], yerr=[s for _, s in stats], fmt="-o", capsize=3, label="OneFlow")
    ax.set_xscale("log")
    ax.set_xlabel("alpha (share of training data left outside)")
    ax.set_ylabel("F1 on Thyroid")
    ax.grid(alpha=0.3)
    ax.set_title("Effect of alpha (paper Figure 8)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_markdown(summary, alpha_rows, args) -> str:
    lines = [
        "# Paper Table 1: Thyroid and KDDCUP99",
        "",
        "Protocol (Zong et al. 2018; Wang et al. 2020): train on a random half of the normal data, test on the other "
        "half plus all anomalies, flag the test points above the (1 - anomaly share of the test set) percentile of "
        "the scores, F1 with anomaly = positive; mean +- standard deviation over seeds.",
        f"Flows: the paper's tabular architecture {PAPER_TABULAR}, alpha {args.alpha}, {args.epochs} epochs on "
        f"Thyroid and {args.kdd_epochs} on KDDCUP99 (early stopping: {args.patience or 'none'}), "
        "normalize='standard'. Peers: IsolationForest (defaults), OneClassSVM (nu 0.1, gamma 'scale'), "
        "LocalOutlierFactor (20 neighbours, novelty mode).",
        f"Seeds: Thyroid {args.seeds}, KDDCUP99 {args.kdd_seeds}. KDDCUP99: the training half is subsampled to "
        f"{args.kdd_max_train} rows for every method, and to {args.max_train_kernel} rows for OneClassSVM and LOF "
        "(kernel and neighbour methods); constant training columns are dropped.",
        "",
        markdown_table(
            [{**r, "f1": f"{r['f1_mean']:.4f} +- {r['f1_std']:.4f}"} for r in summary],
            ["dataset", "method", "seeds", "f1", "paper_f1", "roc_auc_mean", "time_s_mean", "n_train", "n_test"],
            ["dataset", "method", "seeds", "F1 (ours)", "F1 (paper)", "ROC-AUC", "time (s)", "train rows",
             "test rows"], digits=4),
        "",
    ]
    if alpha_rows:
        table = []
        for alpha in sorted(set(r["alpha"] for r in alpha_rows)):
            m, s = mean_std([r["f1"] for r in alpha_rows if r["alpha"] == alpha])
            table.append({"alpha": alpha, "f1": f"{m:.4f} +- {s:.4f}"})
        lines += ["## Effect of alpha (paper Figure 8), Thyroid, OneFlow", "",
                  f"{args.alpha_seeds} seeds per alpha.", "", markdown_table(table, ["alpha", "f1"], ["alpha", "F1"]),
                  "", "![F1 against alpha](tabular_alpha.png)", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "tabular")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--quick", action="store_true", help="smoke run: Thyroid only, one seed, 2 epochs")
    parser.add_argument("--datasets", nargs="*", default=["thyroid", "kddcup"], choices=list(LOADERS))
    parser.add_argument("--methods", nargs="*", default=list(FLOWS) + list(PEERS),
                        choices=list(FLOWS) + list(PEERS))
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=200, help="epochs on Thyroid")
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience in epochs (default: train every epoch, as the paper)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds on Thyroid")
    parser.add_argument("--kdd-seeds", type=int, default=3)
    parser.add_argument("--kdd-max-train", type=int, default=20_000)
    parser.add_argument("--kdd-epochs", type=int, default=30)
    parser.add_argument("--max-train-kernel", type=int, default=5_000)
    parser.add_argument("--alphas", type=float, nargs="*", default=[0.01, 0.02, 0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--alpha-seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the small flows here are fastest single-threaded)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.datasets, args.seeds, args.epochs, args.alphas, args.alpha_seeds = ["thyroid"], 1, 2, [0.05], 1
    out = outdir(args.out)
    warnings.filterwarnings("ignore", category=UserWarning)

    rows, alpha_rows = [], []
    for name in args.datasets:
        X, y = LOADERS[name](args.data)
        local = argparse.Namespace(**{**vars(args), "epochs": args.kdd_epochs if name == "kddcup" else args.epochs})
        rows += run_dataset(name, X, y, local, args.methods)
        if name == "thyroid" and args.alphas:
            alpha_rows = run_alpha(X, y, args, rows)
    summary = summarise(rows)
    write_csv(out / "tabular.csv", rows)
    write_csv(out / "tabular_summary.csv", summary)
    if alpha_rows:
        write_csv(out / "tabular_alpha.csv", alpha_rows)
        plot_alpha(alpha_rows, out / "tabular_alpha.png")
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(out / "results.json", {"config": config,
                                      "machine": machine(), "runs": rows, "summary": summary, "alpha": alpha_rows})
    (out / "summary.md").write_text(summary_markdown(summary, alpha_rows, args))
    print(f"wrote {out}/summary.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
