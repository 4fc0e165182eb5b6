"""Process policy set at import: OpenMP wait policy (before torch loads) and glibc malloc."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import json, os, sys; import adabench; from adabench.runtime import configure_process; "
    "import torch; print(json.dumps({**configure_process(), "
    "'env': os.environ.get('OMP_WAIT_POLICY')}))"
)


def _probe(env: dict[str, str | None], code: str = PROBE) -> dict:
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_sets_a_passive_wait_policy_and_tunes_malloc():
    got = _probe(
        {"OMP_WAIT_POLICY": None, "ADABENCH_OMP_WAIT_POLICY": None, "ADABENCH_MALLOC": None}
    )
    assert got["env"] == "PASSIVE" and got["omp_wait_policy"] == "PASSIVE"
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert got["malloc_tuned"] is True


def test_a_users_own_settings_win():
    got = _probe({"OMP_WAIT_POLICY": "ACTIVE", "ADABENCH_MALLOC": "default"})
    assert got == {"omp_wait_policy": "ACTIVE", "malloc_tuned": False, "env": "ACTIVE"}
    got = _probe({"OMP_WAIT_POLICY": None, "ADABENCH_OMP_WAIT_POLICY": "default"})
    assert got["omp_wait_policy"] is None and got["env"] is None


def test_torch_imported_first_is_reported_not_hidden():
    code = "import torch\n" + PROBE
    got = _probe({"OMP_WAIT_POLICY": None, "ADABENCH_OMP_WAIT_POLICY": None}, code)
    assert got["omp_wait_policy"] is None  # too late for libgomp: recorded as the default


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tune_malloc_applies_every_setting(monkeypatch):
    from adabench import runtime

    monkeypatch.delenv("ADABENCH_MALLOC", raising=False)
    assert runtime.tune_malloc() is (bool(os.confstr("CS_GNU_LIBC_VERSION")))
    monkeypatch.setenv("ADABENCH_MALLOC", "off")
    assert runtime.tune_malloc() is False
