"""``adabench cost`` with ``--write``: a finished sweep's cost into docs/benchmarks.md.

    python benchmarks/sweep_cost.py multirun/fmnist_sneaker_boot_pretrained [--budget 1800]
        [--wall docs/results/fmnist_sneaker_boot_pretrained/sweep_wall.json] [--write]
    python benchmarks/sweep_cost.py multirun/suite_fmnist_pairs --from-runs [--cores 2]
        [--since 2026-11-29T16:45:00+00:00]

The measuring is :mod:`adabench.cost` (the command ``adabench cost`` takes the same arguments
but ``--write``); this script puts its table into docs/benchmarks.md. Without ``--wall`` and
``--from-runs`` the wall time comes from ``docs/results/<sweep name>/sweep_wall.json``.
"""

from __future__ import annotations

from pathlib import Path

from _common import finish, table

from adabench.cost import measure, parser, summary, union_length, worker_spans

__all__ = ["main", "union_length", "worker_spans"]


def main() -> None:
    p = parser()
    p.prog = "benchmarks/sweep_cost.py"
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    name = Path(args.sweep).name
    if not args.from_runs and not args.wall:
        args.wall = str(
            Path(__file__).resolve().parents[1] / "docs/results" / name / "sweep_wall.json"
        )
    cost, info = measure(args)
    head, ratio, what = summary(args, cost, info)
    flags = ""
    if args.from_runs:
        flags = f" --from-runs --cores {args.cores} --budget {args.budget:.0f}"
        flags += f" --since {args.since}" if args.since else ""
    body = table(["part", "seconds", "share"], cost.rows())
    finish(
        f"sweep_cost_{name}",
        f"9. Sweep cost: {name}",
        head,
        body,
        ratio,
        what,
        args.write,
        cmd=f"python benchmarks/sweep_cost.py {args.sweep}{flags} --write",
    )


if __name__ == "__main__":
    main()
