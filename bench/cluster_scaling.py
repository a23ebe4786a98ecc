"""How clustering time and peak memory grow with the number of faces.

    python bench/cluster_scaling.py                      # 10k..200k faces; writes docs/cluster_scaling.*
    python bench/cluster_scaling.py --sizes 10000 50000  # a quicker run

Data: the real LFW embeddings (``.cache/lfw_embeddings.npz``, see ``bench/cluster_lfw.py --make-cache``) plus
synthetic identities drawn to look like LFW: identity centres from a Gaussian fitted to LFW's identity means
(between-identity covariance, corrected for the within-identity noise in a mean of few images), faces = centre
+ within-identity noise (LFW's pooled within-identity covariance, times a per-face Gamma(4) scale for LFW's
heavier tails), normalised; identity sizes resampled from LFW's. The script prints the distance
percentiles of both so the match can be checked. Faces are put into photos (60 % alone, the rest in group
photos of 2-6 faces) so the cannot-link constraint is exercised too.

Each (method, size) runs in its own subprocess so peak RSS (``ru_maxrss``) is that run's alone; the RSS
after loading the data is reported separately. ``stable`` is the app's default method (engine/grouping/
density.py), ``stable-unguarded`` the same without its chaining guard (as before the guard), ``average``
the one before issue 10. Baselines measured in the same run: ``single`` (connected
components of the thresholded k-NN graph, same graph code), sklearn's unconstrained average-linkage
AgglomerativeClustering on the full distance matrix (10k only: it is O(N^2) memory), and sklearn's
AgglomerativeClustering restricted to the same k-NN connectivity.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import REPO  # noqa: E402

DEFAULT_CACHE = REPO / ".cache" / "lfw_embeddings.npz"
DOCS = REPO / "docs"
FACE_SCALE_SHAPE = 4.0  # Gamma shape of the per-face noise scale (mean 1); calibrated on LFW, see __doc__
NOISE_GAIN = 1.1  # extra within-identity variance so the median same-person distance matches LFW's

# method -> largest size it is run at (the O(N^2) ones would not fit / finish).
METHOD_MAX_N = {
    "stable": 10**9,
    "stable-unguarded": 10**9,
    "average": 10**9,
    "single": 10**9,
    "sklearn-knn": 10_000,
    "sklearn-full": 10_000,
}


# ------------------------------------------------------------------------------------------- data


class SyntheticFaces:
    """Gaussian model of LFW identities fitted on the cached embeddings."""

    def __init__(self, emb: np.ndarray, names: np.ndarray):
        x = emb.astype(np.float64)
        _, inv, cnt = np.unique(names, return_inverse=True, return_counts=True)
        d = x.shape[1]
        means = np.zeros((len(cnt), d))
        np.add.at(means, inv, x)
        means /= cnt[:, None]
        res = x - means[inv]
        multi = cnt[inv] > 1
        within = res[multi].T @ res[multi] / (cnt[cnt > 1] - 1).sum()
        m = means[cnt >= 2]
        between = np.cov(m.T) - np.mean(1.0 / cnt[cnt >= 2]) * within
        self.mu = m.mean(0)
        self.lc = _sqrtm(between)
        self.lw = _sqrtm(within * NOISE_GAIN)
        self.sizes = cnt

    def sample(self, n: int, rng: np.random.Generator, first_label: int = 0) -> tuple[np.ndarray, np.ndarray]:
        sizes = []
        while sum(sizes) < n:
            sizes.extend(rng.choice(self.sizes, 1024).tolist())
        sizes = np.array(sizes)
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
        sizes[-1] -= sizes.sum() - n
        sizes = sizes[sizes > 0]
        centres = self.mu + rng.normal(size=(len(sizes), len(self.mu))) @ self.lc.T
        y = np.repeat(np.arange(len(sizes)), sizes)
        out = np.empty((n, len(self.mu)), np.float32)
        for s in range(0, n, 65536):  # blocks: bounded temporary memory
            yy = y[s : s + 65536]
            g = np.sqrt(rng.gamma(FACE_SCALE_SHAPE, 1.0 / FACE_SCALE_SHAPE, len(yy)))[:, None]
            f = centres[yy] + g * (rng.normal(size=(len(yy), len(self.mu))) @ self.lw.T)
            out[s : s + 65536] = f / np.linalg.norm(f, axis=1, keepdims=True)
        return out, y + first_label


def _sqrtm(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    return v * np.sqrt(np.clip(w, 0, None))


def distance_percentiles(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n: int = 100_000):
    """Percentiles (5, 25, 50, 75, 95) of squared distance for same-identity and different-identity pairs;
    same pairs: one random pair per identity with >= 2 faces (so large identities do not dominate)."""
    order = np.argsort(y, kind="stable")
    ys = y[order]
    starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    sizes = np.diff(np.r_[starts, len(ys)])
    ok = sizes >= 2
    st, sz = starts[ok], sizes[ok]
    a = rng.integers(0, 1 << 30, len(st)) % sz
    b = (a + 1 + rng.integers(0, 1 << 30, len(st)) % (sz - 1)) % sz
    i, j = order[st + a], order[st + b]
    same = ((x[i] - x[j]) ** 2).sum(1)
    i, j = rng.integers(0, len(x), n), rng.integers(0, len(x), n)
    k = y[i] != y[j]
    diff = ((x[i[k]] - x[j[k]]) ** 2).sum(1)
    q = [5, 25, 50, 75, 95]
    return np.percentile(same, q), np.percentile(diff, q)


def make_photos(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photo id per face: about 60 % of faces alone in their photo, the rest in group photos of 2-6 faces of
    different people (a person appears at most once per photo, as in real photos)."""
    n = len(y)
    photos = np.empty(n, np.int64)
    next_id, group, want, members = 0, -1, 0, set()
    for i in rng.permutation(n):
        if len(members) >= want:  # start a new photo
            group, members = next_id, set()
            next_id += 1
            want = 1 if rng.random() < 0.857 else int(rng.integers(2, 7))
        if y[i] in members:  # that person is already in this photo: give the face a photo of its own
            photos[i] = next_id
            next_id += 1
            continue
        photos[i] = group
        members.add(y[i])
    return photos


def build_dataset(n: int, lfw: dict, model: SyntheticFaces, seed: int = 0):
    rng = np.random.default_rng(seed)
    emb, names = lfw["emb"], lfw["names"]
    _, y_lfw = np.unique(names, return_inverse=True)
    if n <= len(emb):
        sel = np.sort(rng.choice(len(emb), n, replace=False))
        x, y = emb[sel], y_lfw[sel]
    else:
        xs, ys = model.sample(n - len(emb), rng, first_label=int(y_lfw.max()) + 1)
        x, y = np.concatenate([emb, xs]), np.concatenate([y_lfw, ys])
    return np.ascontiguousarray(x, np.float32), y.astype(np.int64), make_photos(y, rng)


# ----------------------------------------------------------------------------------------- worker


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 / 1024 if sys.platform == "darwin" else r / 1024


def worker(data: Path, method: str, threshold: float, k: int) -> dict:
    from engine.grouping.cluster import cluster_faces, knn
    from evals.metrics import cluster_scores

    z = np.load(data)
    x, y, photos = z["x"], z["y"], z["photos"]
    if method.startswith("sklearn"):
        from scipy import sparse
        from sklearn.cluster import AgglomerativeClustering
    base = _rss_mb()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if method in ("stable", "average", "single"):
        labels = cluster_faces(x, threshold, photo_ids=photos, k=k, method=method)
    elif method == "stable-unguarded":  # the stable method before its chaining guard (issue 10)
        from engine.grouping.density import cluster_faces_stable

        labels = cluster_faces_stable(x, threshold, photo_ids=photos, k=k, link_threshold=np.inf)
    elif method == "sklearn-full":
        labels = AgglomerativeClustering(
            n_clusters=None, distance_threshold=threshold / 2, metric="cosine", linkage="average"
        ).fit_predict(x)
    elif method == "sklearn-knn":
        _, nn = knn(x, x, k + 1)
        rows = np.repeat(np.arange(len(x)), nn.shape[1])
        conn = sparse.csr_matrix((np.ones(nn.size), (rows, nn.ravel())), shape=(len(x), len(x)))
        labels = AgglomerativeClustering(
            n_clusters=None, distance_threshold=threshold / 2, metric="cosine", linkage="average",
            connectivity=conn + conn.T,
        ).fit_predict(x)
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    load = os.getloadavg()[0]
    s = cluster_scores(labels, y)
    return {
        "method": method, "n": len(x), "seconds": seconds, "cpu_seconds": cpu, "load_1min": load,
        "peak_rss_mb": _peak_mb(), "data_rss_mb": base,
        "bcubed_f1": s.bcubed_f1, "pairwise_f1": s.pairwise_f1, "n_clusters": s.n_clusters,
        "n_identities": s.n_classes,
    }


def run_one(data: Path, method: str, threshold: float, k: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(data), "--method", method,
           "--threshold", str(threshold), "--k", str(k)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"method": method, "error": f"timeout after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"method": method, "error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ report


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if "seconds" in r]
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4))
    methods = sorted({r["method"] for r in ok}, key=list(METHOD_MAX_N).index)
    colours = dict(zip(METHOD_MAX_N, ("C4", "C5", "C0", "C1", "C2", "C3"), strict=True))
    ns = sorted({r["n"] for r in ok})
    for ax, key in ((axes[0], "seconds"), (axes[1], "peak_rss_mb")):
        for m in methods:
            rs = sorted((r for r in ok if r["method"] == m), key=lambda r: r["n"])
            ax.plot([r["n"] for r in rs], [r[key] for r in rs], "o-", color=colours[m], label=m)
            if key == "seconds":
                ax.plot([r["n"] for r in rs], [r["cpu_seconds"] for r in rs], "x--", color=colours[m], lw=0.8,
                        label=f"{m} (CPU time)")
            if len(rs) == 1 and len(ns) > 1 and m.startswith("sklearn-full"):
                xs = np.array([rs[0]["n"], ns[-1]], float)
                ys = rs[0][key] * (xs / rs[0]["n"]) ** 2
                ax.plot(xs, ys, ":", color=colours[m], label=f"{m}, N^2 extrapolated")
        if key == "seconds" and ns:
            r0 = min((r for r in ok if r["method"] == "average"), key=lambda r: r["n"], default=None)
            if r0 is not None:
                xs = np.array([ns[0], ns[-1]], float)
                ax.plot(xs, r0[key] * xs / r0["n"], "k:", lw=1, label="O(N) from average")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("faces")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].axhline(60, color="r", lw=0.8, ls="--")
    axes[1].axhline(2048, color="r", lw=0.8, ls="--")
    axes[0].set_ylabel("seconds")
    axes[1].set_ylabel("peak RSS (MB)")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    loads = [r["load_1min"] for r in ok if "load_1min" in r]
    load = f", 1-min load {min(loads):.0f}-{max(loads):.0f}" if loads else ""
    axes[0].set_title(f"wall time (solid) and CPU time (dashed), {os.cpu_count()} cores{load}", fontsize=9)
    axes[1].set_title("peak resident memory of the clustering process (limit 2 GB dashed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def table(results: list[dict], base: dict | None) -> str:
    lines = [
        "| method | threshold | faces | time (s) | CPU time (s) | peak RSS (MB) | "
        "RSS with data loaded (MB) | time / baseline | BCubed F1 | pairwise F1 | clusters / identities |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        head = f"| {r['method']} | {r.get('threshold', 0):.2f} | {r.get('n', 0):,} |"
        if "seconds" not in r:
            lines.append(f"{head} {r['error']} | | | | | | | |")
            continue
        ratio = f"{r['seconds'] / base['seconds']:.2f}" if base else ""
        lines.append(
            f"{head} {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['data_rss_mb']:.0f} | {ratio} | "
            f"{r['bcubed_f1']:.3f} | {r['pairwise_f1']:.3f} | {r['n_clusters']:,} / {r['n_identities']:,} |"
        )
    return "\n".join(lines)


def report(results: list[dict], methods: list[str]) -> None:
    ok = [r for r in results if "seconds" in r]
    base = next((r for r in ok if r["method"] == "sklearn-full"), None) or next(
        (r for r in ok if r["method"] == "single"), None
    )
    print()
    if base:
        print(f"baseline: {base['method']} at {base['n']:,} faces, {base['seconds']:.1f} s, "
              f"{base['peak_rss_mb']:.0f} MB peak")
    print(table(results, base))
    for m in methods:
        rs = sorted((r for r in ok if r["method"] == m), key=lambda r: r["n"])
        if len(rs) >= 2:
            e = np.polyfit(np.log([r["n"] for r in rs]), np.log([r["seconds"] for r in rs]), 1)[0]
            c = np.polyfit(np.log([r["n"] for r in rs]), np.log([r["cpu_seconds"] for r in rs]), 1)[0]
            span = f"{rs[0]['n']:,}..{rs[-1]['n']:,}"
            print(f"{m}: wall time grows as N^{e:.2f}, CPU time as N^{c:.2f} over {span}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    ap.add_argument("--methods", nargs="+", default=list(METHOD_MAX_N))
    ap.add_argument("--threshold", type=float, default=None, help="default: ClusterConfig.threshold")
    ap.add_argument("--average-threshold", type=float, default=None,
                    help="threshold for average linkage (default: --threshold); e.g. 1.15, its best on the dev sets")
    ap.add_argument("--single-threshold", type=float, default=0.90,
                    help="threshold for the single-linkage baseline (its best BCubed F1 on LFW)")
    ap.add_argument("--k", type=int, default=None, help="default: ClusterConfig.k")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per (method, size) run")
    ap.add_argument("--out", type=Path, default=DOCS, help="folder for cluster_scaling.png / .json")
    ap.add_argument("--replot", action="store_true", help="redraw the plot and table from the saved .json")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    from engine.config import ClusterConfig

    cfg = ClusterConfig()
    threshold = cfg.threshold if args.threshold is None else args.threshold
    k = cfg.k if args.k is None else args.k
    if args.worker:
        print(json.dumps(worker(args.worker, args.method, threshold, k)))
        return

    if args.replot:
        results = json.loads((args.out / "cluster_scaling.json").read_text())["results"]
        report(results, args.methods)
        plot(results, args.out / "cluster_scaling.png")
        return
    if not args.cache.exists():
        raise SystemExit(f"{args.cache} missing: run  python bench/cluster_lfw.py --make-cache")
    with np.load(args.cache) as z:
        lfw = {"emb": z["emb"], "names": z["names"]}
    model = SyntheticFaces(lfw["emb"], lfw["names"])
    rng = np.random.default_rng(1)
    _, y_lfw = np.unique(lfw["names"], return_inverse=True)
    xs, ys = model.sample(len(lfw["emb"]), rng)
    q_lfw = distance_percentiles(lfw["emb"], y_lfw, rng)
    q_syn = distance_percentiles(xs, ys, rng)
    print("squared-distance percentiles 5/25/50/75/95")
    for name, (same, diff) in (("LFW", q_lfw), ("synthetic", q_syn)):
        print(f"  {name:9s} same {np.round(same, 2).tolist()}  different {np.round(diff, 2).tolist()}")
    print(f"threshold {threshold}, k {k}, {os.cpu_count()} CPUs", flush=True)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            x, y, photos = build_dataset(n, lfw, model)
            path = Path(tmp) / f"faces_{n}.npz"
            np.savez(path, x=x, y=y, photos=photos)
            del x, y, photos
            for m in args.methods:
                if n > METHOD_MAX_N.get(m, 0):
                    continue
                t = (args.single_threshold if m == "single" else
                     args.average_threshold if m == "average" and args.average_threshold else threshold)
                r = run_one(path, m, t, k, args.timeout)
                r["threshold"] = t
                r.setdefault("n", n)
                results.append(r)
                print(json.dumps(r), flush=True)
            path.unlink()

    report(results, args.methods)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "threshold": threshold, "single_threshold": args.single_threshold,
        "average_threshold": args.average_threshold or threshold, "k": k, "cpus": os.cpu_count(),
        "lfw_percentiles": [q.tolist() for q in q_lfw], "synthetic_percentiles": [q.tolist() for q in q_syn],
        "results": results,
    }
    (args.out / "cluster_scaling.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(results, args.out / "cluster_scaling.png")
    print(f"wrote {args.out / 'cluster_scaling.png'} and {args.out / 'cluster_scaling.json'}")


if __name__ == "__main__":
    main()
