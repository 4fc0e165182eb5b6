"""First hour, second pass: bad values named before training, adabench's own --help, what a
sweep says at its end, interrupts recorded as such."""

from __future__ import annotations

import dataclasses
import json

import pytest

from adabench.config import build, check_types, check_values
from adabench.errors import ConfigError

from .conftest import ROOT, SMOKE, compose_config, run_train


@pytest.mark.slow
@pytest.mark.parametrize(
    "override,key",
    [
        ("trainer.max_epochs=-1", "trainer.max_epochs=-1"),
        ("dataset.n_normal_train=abc", "dataset.n_normal_train='abc'"),
        ("loss.margin=abc", "loss.margin='abc'"),
    ],
)
def test_a_bad_value_stops_the_run_before_training_in_a_few_lines(tmp_path, override, key):
    proc = run_train([override, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode != 0
    assert len(lines) <= 4 and key in lines[0] and ", e.g. " in lines[0], lines
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "csv").exists()  # no epoch ran
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and key in record["error"]["message"]


def test_types_come_from_the_constructors_annotations():
    @dataclasses.dataclass
    class Head:
        scale: float = 64.0
        margin: float | None = None
        classes: int = 2
        center: bool = False
        name: str = "x"

    for ok in ({"scale": 16}, {"scale": 1.5, "margin": None}, {"classes": 3, "center": True}):
        check_types(Head, ok, "loss")
    bad = [
        ({"scale": "abc"}, "loss.scale='abc' must be a number, e.g. loss.scale=64.0"),
        ({"margin": "m"}, "loss.margin='m' must be a number or null, e.g. loss.margin=0.5"),
        ({"classes": 2.5}, "loss.classes=2.5 must be an integer, e.g. loss.classes=2"),
        ({"center": "yes"}, "loss.center='yes' must be true or false, e.g. loss.center=false"),
        ({"classes": True}, "loss.classes=true must be an integer"),
    ]
    for params, message in bad:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
            check_types(Head, params, "loss")


def test_build_checks_types_of_every_group():
    node = dict(compose_config("loss=arcface").loss)
    with pytest.raises(ConfigError, match=r"loss\.scale='big' must be a number"):
        build({**node, "scale": "big"}, where="loss", embedding_dim=8, num_classes=3)
    scorer = dict(compose_config().scorer)
    with pytest.raises(ConfigError, match=r"scorer\.k='abc' must be an integer, e\.g\. scorer\.k="):
        build({**scorer, "k": "abc"}, where="scorer")


@pytest.mark.parametrize("epochs", [-1, 0, "abc", 2.5])
def test_max_epochs_must_be_a_positive_integer(epochs):
    cfg = compose_config(f"trainer.max_epochs={epochs}")
    with pytest.raises(ConfigError, match="trainer.max_epochs=.* must be a positive integer"):
        check_values(cfg)
    check_values(compose_config("trainer.max_epochs=3"))


def test_help_is_adabenchs_own_and_lists_every_config_option(tmp_path):
    proc = run_train(["--help"], tmp_path)
    assert proc.returncode == 0
    text = proc.stdout
    assert text.startswith("adabench:") and "powered by Hydra" not in text
    assert "adabench report" in text and "Examples:" in text
    listed = {
        line.split(":")[0]: set(line.split(": ", 1)[1].split(", "))
        for line in text.splitlines()
        if ": " in line and line.split(":")[0].isidentifier()
    }
    for group in (ROOT / "conf").iterdir():
        if group.is_dir() and group.name != "hydra":
            options = {p.stem for p in group.glob("*.yaml") if not p.stem.startswith("_")}
            assert listed[group.name] == options, group.name  # _budget, _reset: parts, unlisted
    assert "_budget" not in text and "_reset" not in text


@pytest.mark.slow
def test_a_sweeps_last_line_names_the_report_command(tmp_path):
    proc = run_train(["-m", "seed=0,1", "hydra.sweep.dir=runs/my sweep", *SMOKE], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == (
        "2/2 completed, 0 failed; next: adabench report 'runs/my sweep'"
    )
    again = run_train(["-m", "seed=0,1", "hydra.sweep.dir=runs/my sweep", *SMOKE], tmp_path)
    assert again.stdout.strip().splitlines()[-1].startswith("2/2 completed")  # resumed: counted


@pytest.mark.parametrize(
    "cause,message",
    [
        (KeyboardInterrupt(), "interrupted by Ctrl-C (SIGINT)"),
        (SystemExit(1), "interrupted by Ctrl-C (SIGINT)"),  # how Lightning ends on Ctrl-C
        (None, "received signal SIGTERM"),
    ],
)
def test_interrupts_are_recorded_as_interrupted_with_their_cause(tmp_path, cause, message):
    from adabench.interrupts import RunInterrupted
    from adabench.record import RunRecord

    cause = cause if cause is not None else RunInterrupted("received signal SIGTERM")
    record = RunRecord(tmp_path, {"run_name": "x"})
    record.failed(cause)
    record.close({})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "interrupted" and saved["error"]["message"] == message
    assert saved["error"]["message"] != "1"  # never the bare exit code
    record.failed(ValueError("bad"))
    assert record.data["status"] == "failed"
