"""One timed adabench training run in its own process (used by busy_cpu.py and allocator.py).

    python benchmarks/_train_worker.py SECONDS [overrides...]

Runs adabench's Lightning training loop on the composed config, skips 5 warm-up steps, stops
after SECONDS and prints ``{"ips": images per second}`` as its last line. adabench is imported
before torch, as in ``train.py``, so the process policy (adabench/runtime.py) is in force
unless the ``ADABENCH_*`` switches turn it off.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import adabench  # noqa: F401  (first: process policy before torch loads)


def main() -> None:
    import lightning as L
    from hydra import compose, initialize_config_dir

    from adabench.build import build_run
    from adabench.resolvers import register

    seconds, overrides = float(sys.argv[1]), sys.argv[2:]

    class Meter(L.Callback):
        def __init__(self) -> None:
            self.images, self.t0, self.steps = 0, 0.0, 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.steps += 1
            if self.steps == 5:  # warm-up done
                self.t0 = time.perf_counter()
            elif self.steps > 5:
                self.images += len(batch[1])
                if time.perf_counter() - self.t0 > seconds:
                    trainer.should_stop = True

    register()
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = compose("train", overrides=["paths.output_dir=/tmp/adabench-bench", *overrides])
    L.seed_everything(0, verbose=False)
    built = build_run(cfg)
    meter = Meter()
    trainer = L.Trainer(
        max_epochs=10_000,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        precision=cfg.trainer.precision,
        callbacks=[meter],
    )
    trainer.fit(built.module, datamodule=built.dm)
    print(json.dumps({"ips": meter.images / (time.perf_counter() - meter.t0)}))


if __name__ == "__main__":
    main()
