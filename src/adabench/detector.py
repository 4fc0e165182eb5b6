"""A detector folder: what ``adabench export`` writes and ``adabench predict`` reads.

A run's winner becomes something that scores new images:

- ``embedder.pt`` (state dict) and ``embedder.ts`` (TorchScript): uint8 images ``[N, C, H, W]``
  in, embeddings out; ``embedder.onnx`` too when ``onnx`` is installed. Each is checked
  against the PyTorch embeddings when written (``checks`` in ``detector.json``).
- ``normal.npy`` (the normal training embeddings the run scored against), ``index.faiss`` (a
  FAISS index over them, for use outside adabench) and ``normal_ids.json`` (which image each
  is): the memory bank.
- ``detector.json``: the preprocessing (image size, channels, how files are decoded), the
  scorer (``k``, ``distance``), the thresholds and the provenance (config, versions,
  validation metrics).

Thresholds come from the validation parts only (never a test image): one at a target
validation false-positive rate (default 5 %), one at the best validation F1; each with the
rates it gives on validation. An image is anomalous at a threshold when its score is at
least the threshold.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adabench.errors import ConfigError, DataError
from adabench.files import RESULT_FILE, WEIGHTS_FILE, atomic_write, load_result, write_json

DETECTOR_FILE = "detector.json"
TARGET_FPR = 0.05
CHECK_TOLERANCE = 1e-4  # exported embedders must give PyTorch's embeddings within this


# ---------------------------------------------------------------------- thresholds
def choose_thresholds(
    scores: np.ndarray, is_abnormal: np.ndarray, target_fpr: float = TARGET_FPR
) -> dict[str, Any]:
    """Thresholds from validation scores: at ``target_fpr``, and at the best F1.

    ``at_fpr`` is the lowest threshold whose validation false-positive rate is at most
    ``target_fpr`` (so it finds as many validation anomalies as that allows; with fewer than
    ``1 / target_fpr`` validation normals, that is just above the highest of them); ``best_f1`` the
    threshold of the highest validation F1 (the higher one on a tie), ``None`` without
    validation anomalies. Anomalous means ``score >= threshold``.
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(is_abnormal).astype(bool)
    normal, abnormal = np.sort(scores[~labels]), np.sort(scores[labels])
    if len(normal) == 0:
        raise DataError("No validation normal images: thresholds cannot be chosen.")
    # the rates change only at the scores: just above each normal score, and at every score
    candidates = np.unique(np.concatenate([scores, np.nextafter(normal, np.inf)]))
    false_alarms = len(normal) - np.searchsorted(normal, candidates, "left")  # whole counts
    allowed = math.floor(target_fpr * len(normal) + 1e-9)  # 5 % of 20 is 1, not 0.99999…
    at_fpr = float(candidates[np.flatnonzero(false_alarms <= allowed)[0]])
    out: dict[str, Any] = {
        "target_fpr": target_fpr,
        "at_fpr": {"threshold": at_fpr, **_rates(at_fpr, normal, abnormal)},
        "best_f1": None,
    }
    if len(abnormal):
        tp = len(abnormal) - np.searchsorted(abnormal, candidates, "left")
        f1 = 2 * tp / np.maximum(2 * tp + false_alarms + (len(abnormal) - tp), 1)
        best = float(candidates[np.flatnonzero(f1 == f1.max())[-1]])
        out["best_f1"] = {"threshold": best, **_rates(best, normal, abnormal)}
    return out


def _rates(threshold: float, normal: np.ndarray, abnormal: np.ndarray) -> dict[str, float]:
    fp, tp = float((normal >= threshold).sum()), float((abnormal >= threshold).sum())
    out = {"validation_fpr": fp / len(normal)}
    if len(abnormal):
        out["validation_tpr"] = tp / len(abnormal)
        out["validation_f1"] = 2 * tp / max(2 * tp + fp + len(abnormal) - tp, 1.0)
    return out


# ---------------------------------------------------------------------- export
class PixelVectors(torch.nn.Module):
    """The raw-pixel row's "embedder": every image as its pixel values in [0, 1]."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from adabench.baselines import pixel_vectors

        return pixel_vectors(images)


class FeatureVectors(torch.nn.Module):
    """The features row's "embedder": the backbone's pooled features, no neck."""

    def __init__(self, embedder: torch.nn.Module) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedder.features(images)


def image_model(built: Any) -> torch.nn.Module:
    """What turns a run's uint8 images into the vectors it scores (for TorchScript / ONNX)."""
    if built.module is not None:
        return built.embedder
    return PixelVectors() if built.baseline.kind == "pixels" else FeatureVectors(built.embedder)


def run_vectors(built: Any, images: torch.Tensor) -> torch.Tensor:
    """The vectors of the DataModule's ``images`` exactly as the run's evaluation made them."""
    batches = built.dm.eval_batches(images)
    if built.module is not None:
        return built.module.embed(batches)  # eval mode, the evaluation's batches
    return built.baseline.vectors(built.embedder, batches, built.dm.inputs == "trunk")


def export_built(built: Any, cfg: Any, out: str | Path, record: dict | None = None) -> Path:
    """Write the detector of a run's objects (:class:`adabench.build.BuiltRun`), trained or not.

    The normal and validation vectors are computed exactly as the run's evaluation computes
    them, so the memory bank is the one the run scored its test images against.
    """
    from adabench.build import scorer_factory
    from adabench.scoring import KNNScorer

    if not isinstance(scorer_factory(cfg)(), KNNScorer):
        raise ConfigError(
            f"adabench export writes k-NN detectors; this run scored with "
            f"scorer._target_={cfg.scorer.get('_target_')}. Export a run with scorer=knn."
        )
    dm = built.dm
    if dm.split.validation is None or len(dm.val_images) == 0:
        raise DataError(
            "This run has no validation parts, so no threshold can be chosen without looking at "
            "test images; run it with validation on (protocol.validation=true)."
        )
    normal = run_vectors(built, dm.train_images)[dm.train_is_normal].numpy()
    scorer = scorer_factory(cfg)().fit(normal)
    val_scores = scorer.score(run_vectors(built, dm.val_images))
    thresholds = choose_thresholds(val_scores, dm.val_is_abnormal.numpy())
    rows = dm.split.train_indices()[dm.train_is_normal.numpy()]
    ids = dm.pool_ids.get("train")
    normal_ids = [ids[r] if ids else f"train:{r}" for r in rows.tolist()]
    return write_detector(
        Path(out), image_model(built), normal, normal_ids, cfg, thresholds, record or {}
    )


def write_detector(
    out: Path,
    embedder: torch.nn.Module,
    normal: np.ndarray,
    normal_ids: Sequence[str],
    cfg: Any,
    thresholds: dict[str, Any],
    record: dict,
) -> Path:
    """Write the detector folder (atomically, file by file); returns it."""
    from omegaconf import OmegaConf

    from adabench.neighbors import build_index, prepare
    from adabench.record import package_versions

    out.mkdir(parents=True, exist_ok=True)
    dataset = cfg.dataset
    size, channels = int(dataset.image_size), int(dataset.channels)
    embedder = embedder.cpu().eval()
    example = torch.randint(0, 256, (4, channels, size, size), dtype=torch.uint8)
    atomic_write(out / "embedder.pt", lambda p: torch.save(embedder.state_dict(), p))
    checks = {"torchscript_max_abs_diff": _write_torchscript(embedder, example, out)}
    onnx_diff = _write_onnx(embedder, example, out)
    if onnx_diff is not None:
        checks["onnx_max_abs_diff"] = onnx_diff
    np.save(out / "normal.npy", normal.astype(np.float32))
    distance = str(cfg.scorer.distance)
    import faiss

    faiss.write_index(build_index(prepare(normal, distance), distance), str(out / "index.faiss"))
    write_json(out / "normal_ids.json", list(normal_ids))
    config = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    write_json(
        out / DETECTOR_FILE,
        {
            "format": 1,
            "preprocessing": {
                "image_size": size,
                "channels": channels,
                "decode": "adabench.data.folder.decode_image: PIL, JPEG draft, 16-bit scaled, "
                "alpha dropped, converted to L or RGB, bilinear resize to image_size",
                "normalisation": "inside the embedder (mean, std of its buffers)",
            },
            "scorer": {"k": int(cfg.scorer.k), "distance": distance},
            "eval_batch_size": int(cfg.get("eval_batch_size") or 512),
            "thresholds": thresholds,
            "checks": checks,
            "validation": record.get("validation"),
            "provenance": {
                "run_name": record.get("run_name"),
                "config_hash": record.get("config_hash"),
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "versions": package_versions(),
                "config": config,
            },
        },
    )
    return out


def _write_torchscript(embedder: torch.nn.Module, example: torch.Tensor, out: Path) -> float:
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch marks TorchScript deprecated
        traced = torch.jit.trace(embedder, example, check_trace=False)
        atomic_write(out / "embedder.ts", lambda p: traced.save(str(p)))
        loaded = _load_torchscript(out / "embedder.ts")
        other = example[:3]  # another batch size than the traced one: nothing baked in
        diff = float((loaded(other) - embedder(other)).abs().max())
    _check("TorchScript", diff)
    return diff


def _write_onnx(embedder: torch.nn.Module, example: torch.Tensor, out: Path) -> float | None:
    """``embedder.onnx`` and its largest difference from PyTorch (``None``: onnx missing)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            embedder,
            (example,),
            input_names=["images"],
            output_names=["embeddings"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    atomic_write(out / "embedder.onnx", lambda p: program.save(str(p)))
    session = onnxruntime.InferenceSession(
        str(out / "embedder.onnx"), providers=["CPUExecutionProvider"]
    )
    other = example[:3]
    got = session.run(None, {"images": other.numpy()})[0]
    with torch.no_grad():
        diff = float(np.abs(got - embedder(other).numpy()).max())
    _check("ONNX", diff)
    return diff


def _check(what: str, diff: float) -> None:
    if not diff <= CHECK_TOLERANCE:
        raise RuntimeError(
            f"The {what} embedder differs from PyTorch's by {diff:.2e} (> {CHECK_TOLERANCE})."
        )


def export_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Rebuild a finished run from its ``metrics.json`` and ``model.pt``; write its detector.

    Raises:
        DataError: the run did not complete or kept no weights (``save_weights=true``).
    """
    from omegaconf import OmegaConf

    from adabench.build import build_run, load_saved_weights

    run_dir = Path(run_dir)
    record = load_result(run_dir / RESULT_FILE)
    if record.get("status") != "completed":
        raise DataError(f"{run_dir} holds no completed run (status: {record.get('status')}).")
    trained = not str(record.get("loss", "")).startswith("baseline_")
    if trained and not (run_dir / WEIGHTS_FILE).exists():
        raise DataError(
            f"{run_dir} kept no weights ({WEIGHTS_FILE}). Run it again with save_weights=true "
            "(or save_detector=true, which exports at the end of the run)."
        )
    cfg = OmegaConf.create(record["config"])
    built = build_run(cfg)
    _check_same_split(built.dm, run_dir)
    if built.module is not None:
        load_saved_weights(built.module, run_dir / WEIGHTS_FILE)
    return export_built(built, cfg, out or run_dir / "detector", record)


def _check_same_split(dm: Any, run_dir: Path) -> None:
    """The rebuilt split's normal and validation images must be the run's (its split.json)."""
    from adabench.files import SPLIT_FILE

    path = run_dir / SPLIT_FILE
    if not path.exists():
        return
    recorded = json.loads(path.read_text(encoding="utf-8"))["parts"]
    now = dm.split_record()["parts"]
    for part in ("normal_train", "val_normal", "val_abnormal"):
        if part in recorded and recorded[part].get("ids") != now.get(part, {}).get("ids"):
            raise DataError(
                f"The data under the run's dataset.root changed since {run_dir} ran: its "
                f"{part} images differ from its {SPLIT_FILE}, so the detector would not be the "
                "run's. Export from the data the run used."
            )


# ---------------------------------------------------------------------- predict
@dataclass
class Detector:
    """A loaded detector folder (:func:`Detector.load`)."""

    folder: Path
    spec: dict[str, Any]
    embedder: Any
    normal: np.ndarray
    normal_ids: list[str]

    @classmethod
    def load(cls, folder: str | Path) -> Detector:
        """Read a folder that ``adabench export`` (or ``save_detector=true``) wrote."""
        folder = Path(folder)
        if not (folder / DETECTOR_FILE).exists():
            raise DataError(
                f"{folder} is not a detector folder (no {DETECTOR_FILE}); make one with "
                "adabench export RUN_DIR."
            )
        spec = json.loads((folder / DETECTOR_FILE).read_text(encoding="utf-8"))
        embedder = _load_torchscript(folder / "embedder.ts")
        normal = np.load(folder / "normal.npy")
        ids = json.loads((folder / "normal_ids.json").read_text(encoding="utf-8"))
        return cls(folder, spec, embedder, normal, ids)

    @property
    def thresholds(self) -> dict[str, float]:
        """``{"at_fpr": t, "best_f1": t}`` (the ones chosen on validation)."""
        out = {}
        for name in ("at_fpr", "best_f1"):
            chosen = self.spec["thresholds"].get(name)
            if chosen is not None:
                out[name] = float(chosen["threshold"])
        return out

    def embed(self, images: torch.Tensor) -> np.ndarray:
        """Embeddings of prepared uint8 images, in batches of the run's ``eval_batch_size``."""
        size = int(self.spec.get("eval_batch_size") or 512)
        with torch.inference_mode():
            parts = [self.embedder(images[i : i + size]) for i in range(0, len(images), size)]
        return torch.cat(parts).float().numpy() if parts else np.zeros((0, self.normal.shape[1]))

    def score(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, nearest normal image's index, its distance): the run's k-NN, exactly."""
        if getattr(self, "_scorer", None) is None:
            from adabench.scoring import KNNScorer

            k, distance = int(self.spec["scorer"]["k"]), str(self.spec["scorer"]["distance"])
            self._scorer = KNNScorer(k, distance).fit(self.normal)
        return self._scorer.search(embeddings)


def _load_torchscript(path: Path) -> Any:
    import warnings

    with warnings.catch_warnings():  # torch marks TorchScript deprecated; the file is ours
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path)).eval()


def image_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files of ``paths`` (folders read as training does), and paths that are none."""
    from adabench.data.folder import IMAGE_SUFFIXES, files_below

    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += [
                f
                for f in files_below(p)
                if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
            ]
        elif p.is_file():
            files.append(p)
        else:
            missing.append((str(p), "no such file or folder"))
    return files, missing


def predict(
    detector: Detector, files: Sequence[Path], batch_size: int = 256, progress: bool = True
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Score ``files``: one row per readable image, and (file, reason) per unreadable one.

    Each image is decoded and resized exactly as the run's images were
    (:func:`adabench.data.folder.decode_image`).
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from adabench.data.folder import decode_image

    pre = detector.spec["preprocessing"]
    size, channels = int(pre["image_size"]), int(pre["channels"])
    thresholds = detector.thresholds

    def decode(path: Path) -> np.ndarray | str:
        try:
            return decode_image(path, size, channels)
        except Exception as err:  # noqa: BLE001 - listed with its reason, the rest go on
            return f"{type(err).__name__}: {err}"

    rows: list[dict[str, Any]] = []
    bad: list[tuple[str, str]] = []
    bar = tqdm(total=len(files), desc="predicting", unit="img", disable=not progress)
    with bar, ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            decoded = list(pool.map(decode, chunk))
            good = [(f, d) for f, d in zip(chunk, decoded, strict=True) if not isinstance(d, str)]
            bad += [(str(f), d) for f, d in zip(chunk, decoded, strict=True) if isinstance(d, str)]
            if good:
                images = torch.from_numpy(np.stack([d for _, d in good]))
                scores, nearest, dist = detector.score(detector.embed(images))
                for (f, _), s, n, d in zip(good, scores, nearest, dist, strict=True):
                    row = {"path": str(f), "score": float(s)}
                    row.update({f"anomalous_{k}": int(s >= t) for k, t in thresholds.items()})
                    row["nearest_normal"] = detector.normal_ids[int(n)]
                    row["nearest_distance"] = float(d)
                    rows.append(row)
            bar.update(len(chunk))
    return rows, bad


def write_predictions(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """``predictions.csv``: path, score, anomalous at each threshold, nearest normal image."""
    import csv
    import io

    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["path", "score"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, lambda p: p.write_text(buf.getvalue(), encoding="utf-8"))
