"""Process set-up that must happen before torch loads: OpenMP wait policy and glibc's malloc.

Imported by ``adabench/__init__.py``, so it is in force however adabench is started
(``python train.py``, ``adabench-train``, a joblib or submitit job, ``import adabench``).

- **OpenMP wait policy.** torch's OpenMP threads spin while they wait for work. On a shared CPU
  (a parallel sweep, tests beside a sweep, a laptop with a browser) the spinning threads starve
  the ones with work, and a training loop ran 20× slower (docs/benchmarks.md). ``PASSIVE`` makes
  waiting threads sleep. libgomp reads the variable once, when torch loads it, so it is set here
  (unless the user set it) before anything imports torch; child processes inherit it.
- **glibc malloc.** With the default dynamic mmap threshold, every large activation tensor is
  mapped and unmapped on every step and the time goes into the kernel (page faults, zeroing).
  Raising the mmap and trim thresholds keeps freed memory in the heap for the next step:
  1.6–2× faster EfficientNet-Lite0 inference on the CPU (``benchmarks/allocator.py``). The cost
  is that freed memory is returned to the system later. ``mallopt`` works at any time, so this
  also applies when torch was imported first.

Set ``ADABENCH_MALLOC=default`` to keep glibc's defaults and ``ADABENCH_OMP_WAIT_POLICY=default``
to leave OpenMP's (the benchmarks' A/B switches; any other value of the latter is the policy).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
MALLOC_SETTINGS = {
    _M_MMAP_THRESHOLD: 1 << 30,  # allocations below 1 GiB come from the heap, not fresh mmaps
    _M_TRIM_THRESHOLD: 1 << 30,  # keep up to 1 GiB of freed memory for reuse
    _M_TOP_PAD: 64 << 20,  # grow the heap in 64 MiB steps
}

_state: dict[str, object] = {}


def set_omp_wait_policy(policy: str | None = None) -> str | None:
    """Set ``OMP_WAIT_POLICY`` (default ``PASSIVE``) unless the user did; returns what is in force.

    Returns ``None`` when OpenMP runs with its own default: torch was imported before adabench,
    or ``ADABENCH_OMP_WAIT_POLICY=default``.
    """
    policy = policy or os.environ.get("ADABENCH_OMP_WAIT_POLICY", "PASSIVE")
    if policy.lower() == "default":
        return os.environ.get("OMP_WAIT_POLICY")
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = policy
    return os.environ.get("OMP_WAIT_POLICY")


def tune_malloc() -> bool:
    """Apply :data:`MALLOC_SETTINGS` with glibc's ``mallopt``; False when not glibc or disabled."""
    if os.environ.get("ADABENCH_MALLOC", "").lower() in ("default", "0", "off", "false"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.items())


def configure_process() -> dict[str, object]:
    """Apply the process policy once; returns what is in force (recorded in metrics.json)."""
    if not _state:
        _state["omp_wait_policy"] = set_omp_wait_policy()
        _state["malloc_tuned"] = tune_malloc()
    return dict(_state)
