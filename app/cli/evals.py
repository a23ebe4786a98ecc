"""``facenet-photos eval ...``: the benchmark runs that scripts rely on (their flags and JSON stay).

The other experiments (robustness, storage, grouping sweeps, the dlib baseline) have one front end
each, a script in bench/. Both need the ``eval`` extra; without it the command says what to install."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import err, eval_cli, fail, out
from app.cli.progress import ProgressBar


def _require_eval_extra() -> None:
    from evals.extra import INSTALL_HINT, missing_extra

    absent = missing_extra()
    if absent:
        fail(f"the evaluation tools need the eval extra ({', '.join(absent)} missing): {INSTALL_HINT}")


@eval_cli.command("lfw")
def eval_lfw(
    lfw: Annotated[Path, typer.Option(help="LFW folder with images/ and pairs.txt.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the JSON result and ROC plot.")] = Path(
        "results/lfw"
    ),
    pairs: Annotated[str, typer.Option(help="Pairs file inside the LFW folder.")] = "pairs.txt",
    flip: Annotated[bool, typer.Option("--flip", help="Average each face with its mirror image (2x slower).")] = False,
    reuse: Annotated[bool, typer.Option("--reuse", help="Reuse embeddings already in --out.")] = False,
    threads: Annotated[int, typer.Option(help="Network threads (0: every core).")] = 0,
) -> None:
    """LFW 10-fold accuracy and VAL@FAR=1e-3 through the whole pipeline on the original images."""
    _require_eval_extra()
    from engine.config import EmbedConfig
    from evals.lfw import run_lfw_eval

    if not (lfw / pairs).is_file():
        fail(f"{lfw / pairs} not found (pass --lfw with the folder that holds {pairs} and images/)")
    with ProgressBar(err, title="Embedding LFW", unit="img", transient=True) as bar:
        res = run_lfw_eval(lfw, out_dir, pairs_file=pairs, embed_config=EmbedConfig(flip=flip, threads=threads),
                           reuse_embeddings=reuse, on_progress=bar.show)
    f32, i8 = res["float32"], res["int8"]
    out.print(
        f"LFW 10-fold accuracy {100 * f32['accuracy_mean']:.2f} ± {100 * f32['accuracy_std']:.2f} % "
        f"(128-byte int8: {100 * i8['accuracy_mean']:.2f} ± {100 * i8['accuracy_std']:.2f} %), "
        f"VAL@FAR=1e-3 {100 * f32['val_mean']:.2f} ± {100 * f32['val_std']:.2f} %, "
        f"threshold {f32['threshold_mean']:.3f}"
    )
    det = res.get("detection", {})
    if det:
        out.print("Detection: " + ", ".join(f"{k} {v}" for k, v in det.get("counts", det).items()
                                            if isinstance(v, int)))
    out.print(f"Wrote {out_dir / 'lfw_result.json'} and {out_dir / 'lfw_roc.png'}", markup=False)
