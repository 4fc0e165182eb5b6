"""Does validation predict test? Spearman(validation AUROC, test AUROC) per validation design.

    python benchmarks/validation_designs.py DATA_ROOT [--out docs/results/validation_designs]
        [--tasks fmnist_sneaker_boot cifar10_deer_horse cifar10_cat_dog fmnist_shirt_tshirt]
        [--stages 3 4 5 6 7 head] [--ks 1 5 20] [--seed 0]

For each task (the pretrained presets' counts, 96 px, ImageNet EfficientNet-Lite0) and each
validation design (``held_out_reference``, ``synthetic``, ``few_shot``), every configuration
(Lite0 stage 3-7 or the 1280-d head × k × distance = 36, no training:
``loss=baseline_features``; its test AUROCs also re-measure the recipe log's feature rows, which
the metrics' logit bug had corrupted) is scored on the
validation parts and on the test split, through adabench's own protocol objects. Per design it
reports the Spearman rank correlation over the configurations, and the test AUROC of the
configuration validation picks against the best test AUROC (what choosing on validation costs).
The trunk outputs are cached once per stage (adabench's frozen-trunk cache). Output:
``OUT/results.json`` and ``OUT/README.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from scipy.stats import spearmanr

from adabench.build import build_run
from adabench.evaluation import EVAL_PARTS
from adabench.resolvers import register
from adabench.scoring import KNNScorer

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = ("held_out_reference", "synthetic", "few_shot")


def tasks(data: str) -> dict[str, list[str]]:
    cifar = ["dataset=cifar10_jpg", f"dataset.root={Path(data) / 'cifar10-jpg'}"]
    fmnist = [f"dataset.root={data}", "dataset.download=false"]
    return {
        "fmnist_sneaker_boot": ["experiment=fmnist_sneaker_boot_pretrained", *fmnist],
        "cifar10_deer_horse": ["experiment=cifar10_deer_horse_pretrained", *cifar],
        "cifar10_cat_dog": [
            "experiment=cifar10_deer_horse_pretrained",
            *cifar,
            "dataset.normal=cat",
            "dataset.abnormal=dog",
        ],
        "fmnist_shirt_tshirt": [
            "experiment=fmnist_sneaker_boot_pretrained",
            *fmnist,
            "dataset.normal=Shirt",
            "dataset.abnormal=T-shirt/top",
        ],
    }


def embeddings(overrides: list[str]) -> tuple[dict[str, torch.Tensor], object]:
    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    built = build_run(cfg)
    dm, trunk = built.dm, built.dm.inputs == "trunk"
    emb = {
        part: built.baseline.vectors(built.embedder, dm.eval_batches(getattr(dm, attr)), trunk)
        for part, attr in EVAL_PARTS.items()
        if part != "closed" and len(getattr(dm, attr))
    }
    emb["closed"] = torch.zeros(0, emb["train"].shape[1])  # closed-set accuracy: not needed
    return emb, dm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_root")
    p.add_argument("--out", default=str(ROOT / "docs" / "results" / "validation_designs"))
    p.add_argument("--tasks", nargs="*", default=None)
    p.add_argument(
        "--stages",
        nargs="*",
        default=["3", "4", "5", "6", "7", "head"],
        help="Lite0 stages to pool after; head: the whole backbone (1280-d conv head)",
    )
    p.add_argument("--ks", nargs="*", type=int, default=[1, 5, 20])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for task, base in tasks(args.data_root).items():
        if args.tasks and task not in args.tasks:
            continue
        for design in DESIGNS:
            key = f"{task}/{design}"
            if key in results:  # resumable: a finished task × design is kept
                continue
            t0, rows = time.perf_counter(), []
            for stage in args.stages:
                emb, dm = embeddings(
                    [
                        *base,
                        "loss=baseline_features",
                        "backbone.freeze=all",
                        f"backbone.out_stage={'null' if stage == 'head' else stage}",
                        f"validation={design}",
                        f"seed={args.seed}",
                        "logger=none",
                    ]
                )
                for k in args.ks:
                    for distance in ("l2", "cosine"):
                        scorer = lambda k=k, d=distance: KNNScorer(k, d)  # noqa: E731
                        val = dm.protocol.validate(dm, emb, None, scorer())["auroc"]
                        test = dm.protocol.evaluate(dm, emb, None, scorer()).metrics["auroc"]
                        rows.append(
                            {"stage": stage, "k": k, "distance": distance, "val": val, "test": test}
                        )
                        print(f"{key} stage {stage} k {k} {distance}: {val:.4f} / {test:.4f}")
            v, t = np.array([r["val"] for r in rows]), np.array([r["test"] for r in rows])
            rho = float(spearmanr(v, t).statistic)
            picked = rows[int(np.argmax(v))]
            results[key] = {
                "task": task,
                "design": design,
                "spearman": rho,
                "n_configs": len(rows),
                "picked": picked,
                "best_test": float(t.max()),
                "regret": float(t.max() - picked["test"]),
                "seconds": round(time.perf_counter() - t0, 1),
                "configs": rows,
            }
            path.write_text(json.dumps(results, indent=1) + "\n")
            print(f"{key}: Spearman {rho:+.3f}, picked test {picked['test']:.4f} of {t.max():.4f}")
    write_table(results, out / "README.md")


def write_table(results: dict, path: Path) -> None:
    task_names = sorted({r["task"] for r in results.values()})
    lines = [
        "# Does validation predict test? (benchmarks/validation_designs.py)",
        "",
        "Spearman rank correlation between validation AUROC and test AUROC over the "
        "configurations (Lite0 stage × k × distance, no training), per task and validation "
        "design; in brackets, the test AUROC of the configuration validation picks / the best "
        "test AUROC.",
        "",
        "| design | " + " | ".join(task_names) + " | mean ρ |",
        "|---|" + "---|" * (len(task_names) + 1),
    ]
    for design in DESIGNS:
        cells, rhos = [], []
        for task in task_names:
            r = results.get(f"{task}/{design}")
            if r is None:
                cells.append("–")
                continue
            rhos.append(r["spearman"])
            cells.append(f"{r['spearman']:+.2f} ({r['picked']['test']:.3f} / {r['best_test']:.3f})")
        mean = f"{np.mean(rhos):+.2f}" if rhos else "–"
        lines.append(f"| {design} | " + " | ".join(cells) + f" | {mean} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
