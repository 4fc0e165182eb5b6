"""Recipe search: train one config per line of overrides, score several feature/scorer variants.

Each trial composes ``conf/train.yaml`` with the given overrides (exactly what ``train.py`` would
run), trains it, then scores the test set with the run's own scorer *and* with variants that need
no retraining: k = 1/5/10 on the embedding, cosine vs L2, and k-NN on the backbone's pooled
features (before the embedding neck). Every trial appends one JSON line to the log, so a search
can be resumed, extended and tabulated later.

    python benchmarks/recipe_search.py DATA --log docs/results/recipe_log.jsonl \\
        --trial "experiment=fmnist_sneaker_boot loss=arcface loss.scale=16" \\
        --trial "experiment=fmnist_sneaker_boot loss=softmax"

``DATA`` is the folder ``../shared/data/prepare.sh`` filled (``dataset.root`` is set from it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def compose(overrides: list[str]):  # noqa: ANN201 - DictConfig
    """The run config ``train.py`` would build from ``overrides``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from adabench.resolvers import register

    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=overrides, return_hydra_config=False)


def data_overrides(overrides: list[str], data: Path) -> list[str]:
    """Point the dataset at ``data`` as ``seed_protocol.py`` does; the trial's own keys win."""
    from seed_protocol import SWEEPS

    key = "cifar10" if any("cifar10" in o for o in overrides) else "fmnist"
    mine = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    base = [o for o in SWEEPS[key][1](data) if o.split("=", 1)[0] not in mine]
    return [*overrides, *base]


def pooled_features(module, dm, images: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    """Backbone pooled features (before the neck) in eval mode."""
    module.eval()
    with torch.inference_mode():
        return torch.cat([module.embedder.features(b).float() for b in dm.eval_batches(images)])


def auroc_grid(name: str, normal, test, labels) -> dict[str, float]:  # noqa: ANN001
    """AUROC of k-NN scoring for k = 1/5/10 and cosine/L2, keyed ``name/distance/kK``."""
    from adabench.metrics import detection_metrics
    from adabench.scoring import KNNScorer

    return {
        f"{name}/{distance}/k{k}": round(
            detection_metrics(KNNScorer(k, distance).fit(normal).score(test), labels)["auroc"], 4
        )
        for distance in ("cosine", "l2")
        for k in (1, 5, 10)
    }


def append_log(path: Path, rec: dict) -> None:
    """Add one trial's record as a JSON line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def variants(module, dm) -> dict[str, float]:  # noqa: ANN001
    """AUROC of each scorer variant for the module's current weights."""
    labels = dm.test_is_abnormal.numpy()
    emb = (
        module.embed(dm.eval_batches(dm.normal_images)),
        module.embed(dm.eval_batches(dm.test_images)),
    )
    pool = (
        pooled_features(module, dm, dm.normal_images),
        pooled_features(module, dm, dm.test_images),
    )
    return {
        **auroc_grid("emb", emb[0].numpy(), emb[1].numpy(), labels),
        **auroc_grid("pool", pool[0].numpy(), pool[1].numpy(), labels),
    }


def pixel_baseline(overrides: list[str], data: Path) -> dict:
    """k-NN on raw pixels (no training): the floor a trained detector has to beat."""
    from adabench.build import build_datamodule

    cfg = compose(data_overrides(overrides, data))
    dm = build_datamodule(cfg)
    dm.setup("fit")
    normal = (dm.normal_images.flatten(1).float() / 255).numpy()
    test = (dm.test_images.flatten(1).float() / 255).numpy()
    auroc = auroc_grid("pixels", normal, test, dm.test_is_abnormal.numpy())
    return {"overrides": overrides, "train_seconds": 0.0, "auroc": auroc, "history": []}


def run_trial(overrides: list[str], data: Path, eval_every: int | None) -> dict:
    """Train one config; AUROC of every variant at the end (and every ``eval_every`` epochs)."""
    import lightning as L

    from adabench.build import build_datamodule, build_module, build_trainer, training_callbacks

    cfg = compose(data_overrides(overrides, data))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    module = build_module(cfg, dm)
    history: list[dict] = []

    class Every(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001
            e = trainer.current_epoch + 1
            if eval_every and e % eval_every == 0 and e < trainer.max_epochs:
                history.append({"epoch": e, **variants(pl_module, dm)})
                pl_module.train()

    cfg.trainer.enable_progress_bar = False
    out = Path(tempfile.mkdtemp(prefix="recipe-"))
    trainer = build_trainer(cfg, out, False, [*training_callbacks(cfg), Every()])
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - t0
    final = variants(module, dm)
    history.append({"epoch": int(cfg.trainer.max_epochs), **final})
    return {
        "overrides": overrides,
        "train_seconds": round(seconds, 1),
        "train_acc": round(float(trainer.callback_metrics.get("train/acc", float("nan"))), 4),
        "auroc": final,
        "history": history,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="folder filled by ../shared/data/prepare.sh")
    ap.add_argument("--trial", action="append", required=True, help="overrides of one trial")
    ap.add_argument("--log", type=Path, default=ROOT / "docs" / "results" / "recipe_log.jsonl")
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--note", default="")
    ap.add_argument("--pixels", action="store_true", help="k-NN on raw pixels instead of training")
    args = ap.parse_args()
    for trial in args.trial:
        if args.pixels:
            rec = pixel_baseline(shlex.split(trial), args.data)
            print(trial, json.dumps(rec["auroc"]), flush=True)
            append_log(args.log, {**rec, "note": args.note})
            continue
        rec = run_trial(shlex.split(trial), args.data, args.eval_every)
        rec["note"] = args.note
        best = max(rec["auroc"], key=rec["auroc"].get)
        print(
            f"{trial}: {rec['train_seconds']} s, acc {rec['train_acc']}, "
            f"emb/cosine/k1 {rec['auroc']['emb/cosine/k1']}, best {best} {rec['auroc'][best]}",
            flush=True,
        )
        for h in rec["history"]:
            print("   ", json.dumps(h), flush=True)
        append_log(args.log, rec)


if __name__ == "__main__":
    main()
