"""Process policy set at import: OpenMP waiting (before torch loads) and glibc malloc."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (  # torch is not imported: what is probed is set before it loads
    "import json, os, sys; import adabench; from adabench.runtime import configure_process; "
    "print(json.dumps({**configure_process(), "
    "'env': [os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT')]}))"
)


def _probe(env: dict[str, str | None], code: str = PROBE) -> dict:
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


CLEAN = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, "ADABENCH_OMP_WAIT_POLICY": None}


def test_import_sets_a_short_spin_and_tunes_malloc():
    got = _probe({**CLEAN, "ADABENCH_MALLOC": None})
    assert got["env"] == [None, "1000"] and got["openmp"] == "GOMP_SPINCOUNT=1000"
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert got["malloc_tuned"] is True


def test_a_users_own_settings_win():
    got = _probe({**CLEAN, "OMP_WAIT_POLICY": "ACTIVE", "ADABENCH_MALLOC": "default"})
    assert got == {
        "openmp": "OMP_WAIT_POLICY=ACTIVE",
        "malloc_tuned": False,
        "env": ["ACTIVE", None],
    }
    got = _probe({**CLEAN, "GOMP_SPINCOUNT": "5"})
    assert got["openmp"] == "GOMP_SPINCOUNT=5" and got["env"] == [None, "5"]
    got = _probe({**CLEAN, "ADABENCH_OMP_WAIT_POLICY": "default"})
    assert got["openmp"] is None and got["env"] == [None, None]
    got = _probe({**CLEAN, "ADABENCH_OMP_WAIT_POLICY": "passive"})
    assert got["openmp"] == "OMP_WAIT_POLICY=PASSIVE" and got["env"] == ["PASSIVE", None]


def test_torch_imported_first_is_reported_not_hidden():
    code = "import torch\n" + PROBE
    got = _probe(CLEAN, code)
    assert got["openmp"] is None  # too late for libgomp: recorded as OpenMP's default


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tune_malloc_applies_every_setting(monkeypatch):
    from adabench import runtime

    monkeypatch.delenv("ADABENCH_MALLOC", raising=False)
    assert runtime.tune_malloc() is (bool(os.confstr("CS_GNU_LIBC_VERSION")))
    monkeypatch.setenv("ADABENCH_MALLOC", "off")
    assert runtime.tune_malloc() is False
