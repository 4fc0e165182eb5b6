"""Wall time of the tiny smoke sweep, broken down into start-up, training, embedding, scoring.

Runs ``python train.py -m experiment=smoke loss=...`` in a subprocess (a fresh sweep folder)
and reads each job's ``metrics.json``. Start-up = process wall time − the jobs' own time
(imports, Hydra composition, launcher) + each job's set-up (data, model). The last line is the
start-up share of the sweep's wall time.

    python benchmarks/sweep_wall.py [--losses softmax,arcface,...] [--write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DOCS, machine, table, write_section

ROOT = DOCS.parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--losses", default="softmax,l2softmax,arcface,cosface,adacos_fixed,adacos_dynamic"
    )
    p.add_argument(
        "--extra", nargs="*", default=[], help="more overrides, e.g. trainer.max_epochs=3"
    )
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    sweep = Path(tempfile.mkdtemp(prefix="adabench-sweep-"))
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "experiment=smoke",
        f"loss={args.losses}",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
        *args.extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"sweep failed:\n{proc.stderr[-3000:]}")
    runs = [json.loads(f.read_text()) for f in sorted(sweep.rglob("metrics.json"))]
    parts = {
        k: sum(r["times"].get(f"{k}_s", 0.0) for r in runs)
        for k in ("setup", "train", "embed", "score", "total")
    }
    outside = wall - parts["total"]  # interpreter start, imports, Hydra, launcher, logger close
    startup = outside + parts["setup"]
    rows = [
        ["once per sweep: interpreter, imports, Hydra", f"{outside:.2f}", f"{outside / wall:.1%}"],
        ["per job: data + model set-up", f"{parts['setup']:.2f}", f"{parts['setup'] / wall:.1%}"],
        ["start-up total", f"{startup:.2f}", f"{startup / wall:.1%}"],
        ["training", f"{parts['train']:.2f}", f"{parts['train'] / wall:.1%}"],
        ["embedding", f"{parts['embed']:.2f}", f"{parts['embed'] / wall:.1%}"],
        ["scoring", f"{parts['score']:.2f}", f"{parts['score'] / wall:.1%}"],
        ["sweep wall time", f"{wall:.2f}", "100%"],
    ]
    out = table(["part", "seconds", "share"], rows)
    head = f"{len(runs)} jobs (`experiment=smoke loss={args.losses}`); {machine()}"
    print(head)
    print(out)
    n = len(runs)
    print(f"per job: set-up {parts['setup'] / n:.2f} s, training {parts['train'] / n:.2f} s")
    print(f"ratio: {startup / wall:.3f}")
    if args.write:
        body = (
            f"### 4. Sweep wall time\n\n`python benchmarks/sweep_wall.py --write`\n\n{head}\n\n"
            f"{out}\n\n**start-up share of the sweep: {startup / wall:.1%}**"
        )
        write_section("sweep_wall", body)


if __name__ == "__main__":
    main()
