"""LFW 10-fold verification with the app's own pipeline (see docs/evaluation.md).

    python bench/lfw_eval.py                          # all 7,701 images of pairs.txt -> results/lfw/
    python bench/lfw_eval.py --reuse                  # recompute the metrics from results/lfw/lfw_embeddings.npz
    python bench/lfw_eval.py --lfw PATH --out DIR --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_LFW = REPO.parent / "shared" / "data" / "lfw"
DEFAULT_OUT = REPO / "results" / "lfw"


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.config import EmbedConfig
    from evals import run_lfw_eval

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="folder with pairs.txt and images/")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--pairs", default="pairs.txt")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    ap.add_argument("--reuse", action="store_true", help="reuse lfw_embeddings.npz in --out when it matches")
    args = ap.parse_args(argv)
    console = Console()
    if not (args.lfw / args.pairs).is_file():
        console.print(f"[red]{args.lfw / args.pairs} not found[/red]")
        return 2

    with Progress(
        TextColumn("[bold]embedding LFW"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[odd]}"), TimeRemainingColumn(), console=console, transient=True,
    ) as bar:
        task = bar.add_task("lfw", total=None, rate="", odd="")

        def show(p) -> None:
            odd = sum(v for k, v in p.counts.items() if k != "detected")
            bar.update(task, total=p.total, completed=p.done, rate=f"{p.rate:.1f} img/s", odd=f"{odd} not detected")

        res = run_lfw_eval(
            args.lfw, args.out, pairs_file=args.pairs, embed_config=EmbedConfig(threads=args.threads),
            reuse_embeddings=args.reuse, on_progress=show,
        )

    f32, i8, det, tm = res["float32"], res["int8"], res["detection"], res["timing"]
    console.print(f"LFW {res['dataset']['n_pairs']} pairs, {res['dataset']['n_images']} images, "
                  f"{res['dataset']['n_folds']} folds")
    console.print(f"accuracy  float32 {100 * f32['accuracy_mean']:.2f} ± {100 * f32['accuracy_std']:.2f} %   "
                  f"int8 {100 * i8['accuracy_mean']:.2f} ± {100 * i8['accuracy_std']:.2f} %")
    console.print(f"VAL@FAR={res['far_target']:g}  {100 * f32['val_mean']:.2f} ± {100 * f32['val_std']:.2f} % "
                  f"(FAR {f32['far_mean']:.5f} ± {f32['far_std']:.5f})")
    console.print(f"threshold (mean of folds, squared L2): {f32['threshold_mean']:.4f}")
    console.print(f"detection: {det['counts']}, {det['multiple_faces']} images with several faces")
    for f in det["failures"]:
        console.print(f"  {f['image']}: {f['outcome']}")
    console.print(f"{tm['images_per_second']} img/s; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
