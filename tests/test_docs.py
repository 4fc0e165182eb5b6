"""Every command in README and docs/ runs as written (the cheap ones), or at least composes.

- ``python train.py …`` / ``adabench-train …``: Hydra composes the command's config (every
  group option and key must exist; sweeps are composed with each list's first value); the
  default run (README's first command) runs in tests/test_train.py.
- ``adabench report …``: runs on a real two-job smoke sweep placed at the folder it names.
- ``python benchmarks/<script>.py …``: the script exists and its ``--help`` works.
- Every relative link in README and docs/ points at a file that exists.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from adabench.resolvers import register

from .conftest import ROOT, SMOKE, run_train

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SKIP = ("pip ", "python -m pytest", "ruff ", "bash ", "wandb ", "git ", "cd ", "python -m venv")


def commands() -> list[tuple[str, str]]:
    """(page, command) for every line of every ```bash block, continuations joined."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append((str(page.relative_to(ROOT)), line))
    return out


def _strip_comment(line: str) -> str:
    return shlex.split(line, comments=True)


CMDS = commands()
TRAIN = [(p, c) for p, c in CMDS if c.startswith(("python train.py", "adabench-train"))]
REPORT = [(p, c) for p, c in CMDS if c.startswith("adabench report")]
REPORT_BY_MODULE = [(p, c) for p, c in CMDS if c.startswith("python -m adabench.report")]
SCRIPTS = [(p, c) for p, c in CMDS if c.startswith("python benchmarks/")]
SUBCOMMANDS = [  # adabench export / predict / example-data: their --help works
    (p, c) for p, c in CMDS if c.startswith("adabench ") and not c.startswith("adabench report")
]


def test_every_command_is_of_a_kind_this_file_checks():
    known = len(TRAIN) + len(REPORT) + len(REPORT_BY_MODULE) + len(SCRIPTS) + len(SUBCOMMANDS)
    skipped = [c for _, c in CMDS if c.startswith(SKIP)]
    assert known + len(skipped) == len(CMDS), [c for _, c in CMDS]
    assert len(TRAIN) >= 10 and REPORT and SCRIPTS


def first_values(args: list[str]) -> list[str]:
    """Overrides with each sweep list replaced by its first value (what job 0 composes)."""
    parser = OverridesParser.create()
    out = []
    for arg in args:
        (ov,) = parser.parse_overrides([arg])
        if ov.is_sweep_override():
            first = next(iter(ov.sweep_string_iterator()))
            out.append(f"{ov.get_key_element()}={first}")
        else:
            out.append(arg)
    return out


@pytest.mark.parametrize("page,command", TRAIN, ids=[c[:60] for _, c in TRAIN])
def test_train_commands_compose(page, command, tmp_path):
    args = [a for a in _strip_comment(command)[2 if command.startswith("python") else 1 :]]
    args = [a for a in args if a not in ("-m", "--multirun")]
    if "--help" in args or "--cfg" in args:
        proc = run_train(args, tmp_path)
        assert proc.returncode == 0, proc.stderr
        return
    args = [a.replace("DATA", str(tmp_path)) for a in args]
    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=first_values(args), return_hydra_config=True)
    assert cfg.loss.name and cfg.dataset.name, f"{page}: {command}"


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("docs-sweep")
    proc = run_train(["-m", "seed=0,1", "hydra.sweep.dir=sweep", *SMOKE], cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cwd / "sweep"


@pytest.mark.slow
@pytest.mark.parametrize("page,command", REPORT, ids=[c for _, c in REPORT])
def test_report_commands_run(page, command, smoke_sweep, tmp_path):
    args = _strip_comment(command)[2:]
    folders = [a for a in args if not a.startswith("-")]
    for folder in folders:  # the sweep the command names, made of a real smoke sweep
        target = tmp_path / folder.replace("<date>/<time>", "2026-01-01/00-00-00")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-r", str(smoke_sweep), str(target)], check=True)
    args = [a.replace("<date>/<time>", "2026-01-01/00-00-00") for a in args]
    exe = Path(sys.executable).with_name("adabench")
    proc = subprocess.run(
        [str(exe), "report", *args, "--no-plots"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"WANDB_MODE": "offline", "PATH": str(exe.parent), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, f"{page}: {command}\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("command", sorted({_strip_comment(c)[1] for _, c in SUBCOMMANDS}))
def test_adabench_subcommands_named_in_docs_answer_help(command):
    exe = Path(sys.executable).with_name("adabench")
    proc = subprocess.run([str(exe), command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and f"adabench {command}" in proc.stdout, proc.stderr


@pytest.mark.parametrize("script", sorted({_strip_comment(c)[1] for _, c in SCRIPTS}))
def test_benchmark_scripts_named_in_docs_exist_and_answer_help(script):
    assert (ROOT / script).is_file(), script
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0 and "usage" in proc.stdout.lower(), proc.stderr[-1000:]


TUNE = [(p, c) for p, c in CMDS if c.startswith("adabench tune")]


@pytest.mark.parametrize("page,command", TUNE, ids=[c[:70] for _, c in TUNE])
def test_tune_commands_make_a_plan(page, command, tmp_path, monkeypatch):
    """Each ``adabench tune`` command's rows, spaces and overrides compose (nothing runs)."""
    from adabench.tune.cli import parser, plan_from

    monkeypatch.chdir(tmp_path)
    args = [a.replace("DATA", str(tmp_path)) for a in _strip_comment(command)[2:]]
    plan = plan_from(parser().parse_intermixed_args(args))
    assert plan.rows and plan.task, f"{page}: {command}"


def test_the_docs_smoke_tune_command_is_the_one_the_tests_run():
    from .test_tuning import SMOKE_TUNE

    smoke = [c for _, c in TUNE if "experiment=smoke" in c]
    assert smoke and all(
        _strip_comment(c)[2:] == [*SMOKE_TUNE, "--losses", "arcface"] for c in smoke
    )


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            path = target.split("#")[0]
            if not path or "://" in path or path.startswith("mailto:"):
                continue
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_readme_is_short_and_sends_no_one_to_a_folder_a_clone_lacks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    outside = []  # every "../" path, resolved from its page, stays inside the repository
    for page in PAGES:
        for path in re.findall(r"(?:\.\./)+[\w.-]+", page.read_text(encoding="utf-8")):
            if ROOT.resolve() not in (page.parent / path).resolve().parents:
                outside.append(f"{page.relative_to(ROOT)}: {path}")
    assert outside == []


def test_every_test_the_docs_name_exists():
    """``test_x.py::test_y``, ``test_x.py`` and a bare ``test_y`` in docs name real tests."""
    defined: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M):
            defined.setdefault(name, set()).add(path.stem)
    files = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    src = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.py"))
    missing = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for file, name in re.findall(r"\b(test_\w+)\.py(?:::(test_\w+))?", text):
            if file not in files or (name and file not in defined.get(name, set())):
                missing.append(f"{page.name}: {file}.py::{name}")
        for name in re.findall(r"`(test_\w+)`", text):
            if name not in defined and f'"{name}"' not in src:  # metric keys: test_accuracy
                missing.append(f"{page.name}: {name}")
    assert missing == []
