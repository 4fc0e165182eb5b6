"""Where a finished sweep's wall time went, from its runs' metrics.json (no re-running).

    python benchmarks/sweep_cost.py multirun/fmnist_sneaker_boot_pretrained [--budget 1800]
        [--wall docs/results/fmnist_sneaker_boot_pretrained/sweep_wall.json] [--write]

Sums each phase over the runs: set-up (data, model, weights) with the frozen trunk's cached
outputs computed or read, training (forward/backward/optimizer of the trainable layers), embedding
and scoring; the rest of the wall time is process start, imports and Hydra. The last line is the
sweep's wall time over the budget (30 min per dataset: ≤ 1 meets it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import finish, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("sweep")
    p.add_argument("--wall", default=None, help="sweep_wall.json written by seed_protocol.py")
    p.add_argument("--budget", type=float, default=1800.0, help="seconds")
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    runs = [json.loads(f.read_text()) for f in sorted(Path(args.sweep).rglob("metrics.json"))]
    done = [r for r in runs if r.get("status") == "completed"]
    wall_file = Path(args.wall) if args.wall else None
    if wall_file is None:
        name = Path(args.sweep).name
        wall_file = (
            Path(__file__).resolve().parents[1] / "docs" / "results" / name / "sweep_wall.json"
        )
    info = json.loads(wall_file.read_text())
    wall = float(info["wall_s"])
    trunk = sum((r.get("trunk_cache") or {}).get("seconds", 0.0) for r in done)
    computed = sum((r.get("trunk_cache") or {}).get("computed", 0) for r in done)
    reused = sum((r.get("trunk_cache") or {}).get("reused", 0) for r in done)
    phase = {
        k: sum(r["times"].get(k, 0.0) for r in done)
        for k in ("setup_s", "train_s", "embed_s", "score_s", "total_s")
    }
    rest = wall - phase["total_s"]
    rows = [
        ["set-up: data, model, weights (all runs)", phase["setup_s"] - trunk],
        [f"frozen trunk: {computed} images computed, {reused} read from the cache", trunk],
        ["training the unfrozen layers + neck + head", phase["train_s"]],
        ["embedding for evaluation", phase["embed_s"]],
        ["k-NN scoring and metrics", phase["score_s"]],
        ["process start, imports, Hydra, writing results", rest],
        ["sweep wall time", wall],
    ]
    body = table(
        ["part", "seconds", "share"],
        [[name, f"{s:.1f}", f"{100 * s / wall:.1f}%"] for name, s in rows],
    )
    trained = [r for r in done if not r.get("baseline")]
    head = (
        f"`{args.sweep}`: {len(done)} of {len(runs)} runs completed ({len(trained)} trained, "
        f"{len(done) - len(trained)} no-training baselines); {info.get('cpus')} cores, load "
        f"{info.get('load_before'):.2f} before; wall {wall / 60:.1f} min (budget "
        f"{args.budget / 60:.0f} min); share not spent training: "
        f"{100 * (1 - phase['train_s'] / wall):.1f}%"
    )
    finish(
        f"sweep_cost_{Path(args.sweep).name}",
        f"9. Sweep cost: {Path(args.sweep).name}",
        head,
        body,
        wall / args.budget,
        "wall time / 30-min budget",
        args.write,
        cmd=f"python benchmarks/sweep_cost.py {args.sweep} --write",
    )


if __name__ == "__main__":
    main()
