"""Decode an ImageFolder tree (``root/<class>/<image>``) into a uint8 pool, robustly.

Mixed grayscale / RGB / RGBA / palette / 16-bit images are converted to the configured channel
count; very large images are decoded at reduced size where the codec allows; files whose
suffix is not an image suffix are ignored; unreadable images either fail the run with the list
of files (``on_corrupt="error"``) or are skipped and reported (``on_corrupt="skip"``).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from adabench.console import refresh_interval
from adabench.data.images import ImagePool
from adabench.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
ON_CORRUPT = ("error", "skip")
PROGRESS_FROM = 2000  # folders with at least this many images show a decoding progress bar
# Pillow's decompression-bomb limit (≈ 89 M pixels warns, twice that fails) stays in force: a
# 20000 × 20000 PNG would take gigabytes to decode for a 96-pixel input. Larger JPEGs are
# draft-decoded at a reduced scale (decode_image), so they never reach full size in memory.


class UnreadableImages(DataError):
    """Images that could not be decoded, under one or more folders (all of them, not the first).

    Args:
        roots: The folders that were read.
        files: ``"<file> (<error>)"`` for each unreadable image.
    """

    SHOWN = 20

    def __init__(self, roots: list[Path], files: list[str]) -> None:
        self.roots, self.files = list(roots), list(files)
        more = len(files) - self.SHOWN
        shown = "\n  ".join(files[: self.SHOWN]) + (f"\n  … and {more} more" if more > 0 else "")
        where = " and ".join(str(r) for r in roots)
        super().__init__(
            f"{len(files)} unreadable image(s) under {where}:\n  {shown}\n"
            "Fix or remove them, or set dataset.on_corrupt=skip to skip them."
        )

    @classmethod
    def joined(cls, errors: list[UnreadableImages]) -> UnreadableImages:
        """One error for the unreadable images of several splits."""
        return cls([r for e in errors for r in e.roots], [f for e in errors for f in e.files])


def list_images(root: Path) -> tuple[list[str], list[tuple[Path, int]], list[Path]]:
    """Classes (sorted sub-folders), (file, class index) pairs and ignored non-image files.

    Raises:
        DataError: missing root, no class folders, or an empty class folder.
    """
    if not root.is_dir():
        raise DataError(
            f"Image folder {root} does not exist. dataset=folder expects "
            "<root>/train/<class>/<image> and <root>/test/<class>/<image>; "
            "set dataset.root=/path/to/root."
        )
    classes = class_folders(root)
    if not classes:
        raise DataError(
            f"Image folder {root} has no class sub-folders (expected {root}/<class>/…)."
        )
    check_class_links(root, classes)
    files: list[tuple[Path, int]] = []
    ignored: list[Path] = []
    for idx, name in enumerate(classes):
        found = 0
        for path in files_below(root / name):
            if path.name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append((path, idx))
                found += 1
            else:
                ignored.append(path)
        if found == 0:
            raise DataError(
                f"Class folder {root / name} holds no images (suffixes: "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}); add images or remove the folder."
            )
    return classes, files, ignored


def check_class_links(root: Path, classes: list[str]) -> None:
    """Refuse class folders that are links to an ancestor or to another class folder.

    A class linked to its parent would hold every image of the tree, the abnormal class's
    included, and be trained on as a reference class.

    Raises:
        DataError: naming the folder, its target and the fix.
    """
    seen: dict[Path, str] = {}
    top = root.resolve()
    for name in classes:
        folder = root / name
        target = folder.resolve()
        if target == top or target in top.parents:
            raise DataError(
                f"Class folder {folder} links to {target}, which holds the class folders "
                "themselves: its images would be counted twice, the abnormal class's too. "
                "Remove the link, or point it at a folder of that class's own images."
            )
        if target in seen:
            raise DataError(
                f"Class folders {root / seen[target]} and {folder} are the same folder "
                f"({target}): one image cannot be in two classes. Remove one of them."
            )
        seen[target] = name


def files_below(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted; linked folders are followed once, never in a loop.

    Raises:
        DataError: a link inside ``folder`` points at ``folder`` or one of its ancestors.
    """
    out: list[Path] = []
    top = folder.resolve()
    visited: set[Path] = set()
    for here, subfolders, names in os.walk(folder, followlinks=True):
        real = Path(here).resolve()
        if real in visited:  # a second link to a folder already read: its images once
            subfolders.clear()
            continue
        visited.add(real)
        for sub in list(subfolders):
            target = (Path(here) / sub).resolve()
            if target in (top, real) or target in top.parents or target in real.parents:
                raise DataError(
                    f"Folder {Path(here) / sub} links to {target}, which holds it: its images "
                    "would be read again and again. Remove the link."
                )
        subfolders.sort()
        out += [Path(here) / n for n in names]
    return sorted(p for p in out if p.is_file())


def class_folders(root: Path) -> list[str]:
    """The class names of ``root`` (its sorted sub-folders) without reading any image."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


_FINGERPRINTS: dict[tuple[Path, bool], tuple[tuple, str]] = {}  # (folder, times) → signature, hash


def folder_signature(root: Path) -> tuple:
    """Every folder under ``root`` with its modification time, without a stat of any file.

    A folder's time changes when a file in it is added, removed or renamed.
    """
    found = []
    seen: set[str] = set()
    for path, subfolders, _ in os.walk(root, followlinks=True):  # as files_below reads them
        real = os.path.realpath(path)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        found.append((path, os.stat(path).st_mtime_ns))
    return tuple(found)


def listing_fingerprint(root: Path, times: bool = True) -> str:
    """Hash of every file's relative path, size and (``times``) modification time under ``root``.

    The listing is read once per process while no folder under ``root`` changes (a sweep's
    runs share it: re-reading 60 000 files' metadata took seconds a run); a file rewritten in
    place under its old name is seen by the next process.
    """
    signature = folder_signature(root) if root.is_dir() else ()
    known = _FINGERPRINTS.get((root.resolve(), times))
    if known is not None and known[0] == signature:
        return known[1]
    with_times, sizes_only = hashlib.sha256(), hashlib.sha256()  # both from one walk
    if root.is_dir():
        for path in files_below(root):  # linked folders included, as the images are read
            st = path.stat()
            entry = f"{path.relative_to(root)}\0{st.st_size}"
            with_times.update(f"{entry}\0{st.st_mtime_ns}\n".encode())
            sizes_only.update(f"{entry}\n".encode())
    for flag, digest in ((True, with_times), (False, sizes_only)):
        _FINGERPRINTS[(root.resolve(), flag)] = (signature, digest.hexdigest())
    return (with_times if times else sizes_only).hexdigest()


def decode_image(path: Path, size: int, channels: int) -> np.ndarray:
    """Decode one file to a ``uint8`` array ``[C, size, size]``.

    Raises:
        OSError / ValueError: the file is not a readable image (PIL's own errors).
    """
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as img:
        img.draft(mode, (size, size))  # JPEG: decode at a reduced scale when much larger
        img.load()
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float32)
            top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
            img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
        elif img.mode == "P":
            img = img.convert("RGBA")
        if img.mode != mode:
            img = img.convert(mode)
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image_folder(
    root: Path, size: int, channels: int, on_corrupt: str = "error", workers: int = 4
) -> ImagePool:
    """Decode every image under ``root/<class>/`` into an :class:`ImagePool`.

    Raises:
        ConfigError: ``on_corrupt`` is not one of ``error``, ``skip``.
        DataError: missing / empty folders, or unreadable images with ``on_corrupt="error"``.
    """
    if on_corrupt not in ON_CORRUPT:
        raise ConfigError(
            f"dataset.on_corrupt must be one of {', '.join(ON_CORRUPT)}, got {on_corrupt!r}."
        )
    classes, files, _ignored = list_images(root)

    def work(item: tuple[Path, int]) -> np.ndarray | str:
        try:
            return decode_image(item[0], size, channels)
        except Exception as err:  # noqa: BLE001 - collected and reported below
            return f"{item[0]} ({type(err).__name__}: {err})"

    bar = tqdm(
        total=len(files),
        desc=f"decoding {root}",
        unit="img",
        disable=len(files) < PROGRESS_FROM,
        mininterval=max(1.0, refresh_interval()),
        dynamic_ncols=True,
    )
    with bar, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = []
        for item in pool.map(work, files, chunksize=64):
            decoded.append(item)
            bar.update()
    bad = [d for d in decoded if isinstance(d, str)]
    if bad and on_corrupt == "error":
        raise UnreadableImages([root], bad)
    keep = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
    if not keep:
        raise DataError(f"No readable images under {root}.")
    images = torch.from_numpy(np.stack([decoded[i] for i in keep]))
    labels = torch.tensor([files[i][1] for i in keep], dtype=torch.int64)
    skipped = [d for d in decoded if isinstance(d, str)]
    ids = [files[i][0].relative_to(root).as_posix() for i in keep]
    return ImagePool(images, labels, classes, skipped, ids=ids)
