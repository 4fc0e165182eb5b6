"""Console scripts: ``adabench-train`` (what ``train.py`` does) and ``adabench <command>``."""

from __future__ import annotations

from adabench.config import config_dir

__all__ = ["config_dir", "export_main", "main", "predict_main", "train"]


def train() -> None:
    """Entry point of ``adabench-train``."""
    import hydra
    from omegaconf import DictConfig

    from adabench.resolvers import register
    from adabench.run import run_job

    register()

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
    def main(cfg: DictConfig) -> float:
        return run_job(cfg)

    main()


USAGE = """usage: adabench <command> ...

  train [OVERRIDES] [-m]     one run, or a sweep with -m (the same as python train.py)
  report SWEEP...            tables, statistics and plots of the runs of sweeps
  export RUN_DIR [--out D]   a trained run's detector: embedder, memory bank, thresholds
  predict DETECTOR PATH...   score images (files or folders) with an exported detector
  example-data DEST          write a generated OK/NG tree (textures with drawn defects)
  tune [OVERRIDES] [--losses ...]  equal-budget tuning of every row, best on fresh seeds
  cost SWEEP [--from-runs]   where a finished sweep's (or study's) time went

adabench <command> --help for each; adabench-train is adabench train"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``adabench``: train, report, tune, export, predict, cost, example-data."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "train":  # Hydra reads sys.argv: the overrides after "train"
        sys.argv = [f"{sys.argv[0]} train", *rest]
        train()
        return 0
    if command == "report":
        from adabench.report import main as report_main

        return report_main(rest)
    if command == "export":
        return export_main(rest)
    if command == "predict":
        return predict_main(rest)
    if command == "tune":
        from adabench.tune.cli import main as tune_main

        return tune_main(rest)
    if command == "cost":
        from adabench.cost import main as cost_main

        return cost_main(rest)
    if command == "example-data":
        from adabench.data.inspection import main as example_main

        return example_main(rest)
    print(USAGE)
    return 0 if command in ("-h", "--help") else 2


def export_main(argv: list[str]) -> int:
    """``adabench export RUN_DIR [--out DIR]``."""
    import argparse

    p = argparse.ArgumentParser(
        prog="adabench export",
        description="Write a trained run's detector folder: the embedder (state dict, "
        "TorchScript, ONNX when onnx is installed), the normal memory bank (FAISS), the "
        "preprocessing and thresholds chosen on validation. The run needs save_weights=true.",
    )
    p.add_argument("run_dir", help="a completed run's folder (with model.pt)")
    p.add_argument("--out", default=None, help="detector folder (default: RUN_DIR/detector)")
    args = p.parse_args(argv)
    import sys

    from adabench.detector import export_run
    from adabench.errors import ConfigError, DataError
    from adabench.resolvers import register

    register()
    try:
        out = export_run(args.run_dir, args.out)
    except (ConfigError, DataError, FileNotFoundError) as err:
        print(f"[adabench] error: {err}", file=sys.stderr)
        return 1
    print(f"[adabench] detector written to {out}; next: adabench predict {out} IMAGES...")
    return 0


def predict_main(argv: list[str]) -> int:
    """``adabench predict DETECTOR PATHS... [--out predictions.csv]``."""
    import argparse

    p = argparse.ArgumentParser(
        prog="adabench predict",
        description="Score images with an exported detector: per image its anomaly score, "
        "whether it is anomalous at each threshold (chosen on validation) and its nearest "
        "normal training image. Exit code 1 when a file could not be read.",
    )
    p.add_argument("detector", help="a folder written by adabench export (or save_detector=true)")
    p.add_argument("paths", nargs="+", help="image files and folders (read recursively)")
    p.add_argument("--out", default="predictions.csv", help="CSV to write (predictions.csv)")
    p.add_argument("--batch-size", type=int, default=256, help="images decoded per batch")
    args = p.parse_args(argv)
    import sys
    from pathlib import Path

    from adabench.detector import Detector, image_files, predict, write_predictions
    from adabench.errors import DataError

    try:
        detector = Detector.load(args.detector)
    except DataError as err:
        print(f"[adabench] error: {err}", file=sys.stderr)
        return 2
    files, missing = image_files(args.paths)
    rows, bad = predict(detector, files, args.batch_size)
    write_predictions(rows, Path(args.out))
    for path, reason in missing + bad:
        print(f"[adabench] unreadable, skipped: {path} ({reason})", file=sys.stderr)
    flagged = sum(r.get("anomalous_at_fpr", 0) for r in rows)
    print(
        f"[adabench] {len(rows)} image(s) scored, {flagged} anomalous at the "
        f"{detector.spec['thresholds']['target_fpr']:.0%}-FPR threshold, "
        f"{len(missing) + len(bad)} unreadable; wrote {args.out}"
    )
    return 1 if missing or bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
