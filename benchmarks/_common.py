"""Shared helpers of the benchmark scripts: tables, machine facts, docs/benchmarks.md sections."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    """One line saying where the numbers were measured."""
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), {dev}"
    )


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of ``fn`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(
    rounds: int, cases: dict[str, dict[str, Callable[[], float]]]
) -> dict[tuple[str, str], list[float]]:
    """Run every case's arms in turn, ``rounds`` times (A, B, A, B, …); their images/s."""
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for case, arms in cases.items():
            for arm, measure in arms.items():
                ips = measure()
                results.setdefault((case, arm), []).append(ips)
                print(f"{case} {arm}: {ips:.1f} img/s", flush=True)
    return results


def ab_rows(
    results: dict[tuple[str, str], list[float]], cases: Sequence[str], base: str, new: str
) -> tuple[list[list[str]], dict[str, float]]:
    """Table rows ``[case, base median, new median, new/base]`` and the ratio of each case."""
    rows, ratios = [], {}
    for case in cases:
        a = statistics.median(results[(case, base)])
        b = statistics.median(results[(case, new)])
        ratios[case] = b / a
        rows.append([case, f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}x"])
    return rows, ratios


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def write_section(name: str, body: str, path: Path = DOCS) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"<!-- bench:{name} -->\n{body.strip()}\n<!-- /bench:{name} -->"
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


NEEDS_DATA = ("train_throughput", "data_path", "knn_scoring")


def finish(
    name: str,
    title: str,
    head: str,
    body: str,
    ratio: float,
    what: str,
    write: bool,
    cmd: str | None = None,
) -> None:
    """Print the table and the ``ratio:`` line; with ``write``, update docs/benchmarks.md.

    ``cmd`` is the command shown above the table (default: the script ``name`` with ``--write``).
    """
    print(head)
    print(body)
    print(f"ratio: {ratio:.3f}")
    if write:
        data = " --data-root DATA" if name in NEEDS_DATA else ""
        cmd = cmd or f"python benchmarks/{name}.py{data} --write"
        text = f"### {title}\n\n`{cmd}`\n\n{head}\n\n{body}\n\n**ratio ({what}): {ratio:.3f}**"
        write_section(name, text)


def run_sweep(overrides: list[str]) -> tuple[float, list[dict]]:
    """Run ``train.py -m <overrides>`` in a fresh sweep folder: (wall s, metrics.json records)."""
    import json
    import subprocess
    import sys
    import tempfile

    root = DOCS.parents[1]
    sweep = Path(tempfile.mkdtemp(prefix="adabench-sweep-"))
    cmd = [
        sys.executable,
        str(root / "train.py"),
        "-m",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
        *overrides,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"sweep failed:\n{proc.stderr[-3000:]}")
    return wall, [json.loads(f.read_text()) for f in sorted(sweep.rglob("metrics.json"))]
