"""How long a bad command takes to be refused: wrong values and missing keys, side by side.

    python benchmarks/refusal_time.py [--rounds 5] [--write]

Each round runs, in turn, ``python train.py`` with a value of the wrong range
(``trainer.max_epochs=-1``), of the wrong type (``optimizer.lr=abc``), a required key left
unset (``dataset=folder``) and ``--help``; the table gives each one's median wall time and its
last line, and the ratio of the slowest refusal to ``--help`` (the floor: interpreter, Hydra).
Target: every refusal within 5 s on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import finish, machine, table

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "wrong range": ["trainer.max_epochs=-1"],
    "wrong type": ["optimizer.lr=abc"],
    "required key unset": ["dataset=folder"],
    "--help (the floor)": ["--help"],
}


def run(args: list[str], where: Path) -> tuple[float, str, int]:
    cmd = [sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={where}"]
    if args == ["--help"]:
        cmd = cmd[:-1]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=where.parent, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return seconds, (lines[0] if args != ["--help"] else "(help page)"), proc.returncode


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    times: dict[str, list[float]] = {k: [] for k in CASES}
    said: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # interleaved: A, B, C, D, A, B, …
            for i, (name, overrides) in enumerate(CASES.items()):
                seconds, line, code = run(overrides, Path(tmp) / f"round{r}-case{i}")
                times[name].append(seconds)
                said[name] = f"{line[:90]}… (exit {code})"
                print(f"{name}: {seconds:.2f} s", flush=True)
    rows = [[k, f"{statistics.median(v):.2f}", f"{max(v):.2f}", said[k]] for k, v in times.items()]
    floor = statistics.median(times["--help (the floor)"])
    worst = max(statistics.median(v) for k, v in times.items() if k != "--help (the floor)")
    head = f"{machine()}; load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds, interleaved"
    body = table(["command", "median s", "max s", "what it printed first"], rows)
    finish(
        "refusal_time",
        "Refusing a bad command",
        head,
        body,
        worst / floor,
        "slowest refusal / --help",
        args.write,
    )


if __name__ == "__main__":
    main()
