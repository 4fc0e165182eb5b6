"""Process set-up that must happen before torch loads: OpenMP wait policy and glibc's malloc.

Imported by ``adabench/__init__.py``, so it is in force however adabench is started
(``python train.py``, ``adabench-train``, a joblib or submitit job, ``import adabench``).

- **OpenMP waiting.** torch's OpenMP threads spin while they wait for work (libgomp's default:
  about 300 000 spins, ~3 ms). On a shared CPU (tests beside a sweep, a laptop with a browser,
  two trainings at once) the spinning threads starve the ones with work: a training run beside
  an identical one ran at 0.2× its solo speed. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``)
  keeps 0.8–0.9× when shared but costs up to 45 % of the solo speed on small models, whose
  parallel regions are short. adabench sets ``GOMP_SPINCOUNT=1000`` (~10 µs of spinning):
  0.375–0.42× when shared at 0.87–0.96× of the default's solo speed
  (``benchmarks/busy_cpu.py``, docs/benchmarks.md §7). libgomp reads these variables once,
  when torch loads it, so they are set here, before anything imports torch, unless the user
  set either; child processes (joblib, submitit, DDP) inherit them.
- **glibc malloc.** With the default dynamic mmap threshold, every large activation tensor is
  mapped and unmapped on every step and the time goes into the kernel (page faults, zeroing).
  Raising the mmap and trim thresholds keeps freed memory in the heap for the next step:
  1.6–2× faster EfficientNet-Lite0 inference on the CPU (``benchmarks/allocator.py``). The cost
  is that freed memory is returned to the system later. ``mallopt`` works at any time, so this
  also applies when torch was imported first.

Switches (the benchmarks' A/B arms, and for users who know better): ``ADABENCH_MALLOC=default``
keeps glibc's defaults; ``ADABENCH_OMP_WAIT_POLICY=default`` leaves OpenMP's, ``PASSIVE`` or
``ACTIVE`` sets that ``OMP_WAIT_POLICY`` instead of the spin count.
"""

from __future__ import annotations

import ctypes
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


SPIN_COUNT = "1000"


def set_omp_waiting() -> str | None:
    """Set how idle OpenMP threads wait (see the module docstring); returns what is in force.

    Returns ``None`` when OpenMP runs with its own default: torch was imported before adabench,
    or ``ADABENCH_OMP_WAIT_POLICY=default``.
    """
    users = [
        f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ
    ]
    if users:
        return ", ".join(users)
    choice = os.environ.get("ADABENCH_OMP_WAIT_POLICY", "").upper()
    if choice == "DEFAULT" or "torch" in sys.modules:
        return None
    if choice in ("PASSIVE", "ACTIVE"):
        os.environ["OMP_WAIT_POLICY"] = choice
        return f"OMP_WAIT_POLICY={choice}"
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return f"GOMP_SPINCOUNT={SPIN_COUNT}"


def tune_malloc() -> bool:
    """Apply :data:`MALLOC_SETTINGS` with glibc's ``mallopt``; False when not glibc or disabled."""
    if os.environ.get("ADABENCH_MALLOC", "").lower() in ("default", "0", "off", "false"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:  # glibc's soname first: find_library would start a subprocess
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.items())


def configure_process() -> dict[str, object]:
    """Apply the process policy once; returns what is in force (recorded in metrics.json)."""
    if not _state:
        _state["openmp"] = set_omp_waiting()
        _state["malloc_tuned"] = tune_malloc()
    return dict(_state)
