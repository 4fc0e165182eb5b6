"""The presets' frozen-trunk cache vs full fine-tuning: AUROC and time, same loss and seeds.

The cached arm is read from a finished preset sweep (``multirun/<experiment>``): stages 1-4
frozen and cached, stage 5 + neck + head trained for the preset's epochs. The full arm runs the
same preset with every layer trained (``backbone.freeze=0``, no cache) for ``--epochs`` epochs
(1 by default: the closest whole-epoch budget to the cached arm's training time), into
``multirun/<experiment>_full_finetune``. Prints per-seed AUROC and time; the last line is the
median paired AUROC difference, cached − full (≥ 0: the cache costs no AUROC).

    python benchmarks/cache_vs_finetune.py DATA --experiment cifar10_deer_horse_pretrained \
        [--loss softmax] [--seeds 0 1 2 3 4] [--epochs 1] [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import DOCS, finish, machine, table
from seed_protocol import SWEEPS

ROOT = DOCS.parents[1]


def runs(sweep: Path, loss: str) -> dict[int, dict]:
    out = {}
    for f in sorted(sweep.rglob("metrics.json")):
        r = json.loads(f.read_text())
        if r.get("status") == "completed" and r.get("loss") == loss:
            out[int(r["seed"])] = r
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_root")
    p.add_argument("--experiment", default="cifar10_deer_horse_pretrained")
    p.add_argument("--loss", default="softmax")
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    data = next(fn for exp, fn in SWEEPS.values() if exp == args.experiment)
    cached = runs(ROOT / "multirun" / args.experiment, args.loss)
    missing = [s for s in args.seeds if s not in cached]
    if missing:
        sys.exit(f"the preset sweep has no completed {args.loss} run for seeds {missing}")
    sweep = ROOT / "multirun" / f"{args.experiment}_full_finetune"
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"experiment={args.experiment}",
        *data(args.data_root),
        f"loss={args.loss}",
        f"seed={','.join(map(str, args.seeds))}",
        "backbone.freeze=0",
        "backbone.cache_trunk=false",
        f"trainer.max_epochs={args.epochs}",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    ]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        sys.exit("the full fine-tuning sweep failed")
    full = runs(sweep, args.loss)
    rows, diffs = [], []
    for s in args.seeds:
        a, b = cached[s], full[s]
        diffs.append(a["metrics"]["auroc"] - b["metrics"]["auroc"])
        rows.append(
            [
                s,
                f"{a['metrics']['auroc']:.4f}",
                f"{a['times']['total_s']:.0f}",
                f"{b['metrics']['auroc']:.4f}",
                f"{b['times']['total_s']:.0f}",
                f"{diffs[-1]:+.4f}",
            ]
        )
    med = statistics.median(diffs)
    epochs = cached[args.seeds[0]].get("epochs")
    head = (
        f"`{args.experiment}`, loss {args.loss}: cached = stages 1-4 frozen and cached, stage 5 "
        f"+ neck + head trained ({epochs} epochs, from the preset sweep); full = every layer "
        f"trained, {args.epochs} epoch(s), no cache; {machine()}"
    )
    body = table(
        ["seed", "cached AUROC", "cached run s", "full AUROC", "full run s", "cached − full"],
        rows,
    )
    finish(
        f"cache_vs_finetune_{args.experiment}",
        f"11. Frozen-trunk cache vs full fine-tuning: {args.experiment}",
        head,
        body,
        med,
        "median paired AUROC difference, cached − full fine-tuning",
        args.write,
        cmd=f"python benchmarks/cache_vs_finetune.py DATA --experiment {args.experiment} --write",
    )


if __name__ == "__main__":
    main()
