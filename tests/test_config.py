"""Config → object: every group option composes and builds; bad targets and keys are named."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir

from adabench.baselines import Baseline
from adabench.config import as_dict, build, target_of
from adabench.data.protocols import Protocol
from adabench.data.sources import ImageSource, build_source
from adabench.data.validation import ValidationDesign
from adabench.errors import ConfigError
from adabench.losses import ClassificationHead
from adabench.scoring import Scorer

from .conftest import ROOT, compose_config


def test_every_config_group_option_composes_and_builds(tmp_path):
    """Every option of every group composes, and every ``_target_`` it names can be built."""
    conf = ROOT / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for loss in sorted(p.stem for p in (conf / "loss").glob("*.yaml")):
            cfg = compose("train", overrides=[f"loss={loss}"], return_hydra_config=False)
            assert cfg.loss.name == loss  # one name: the option's
            if issubclass(target_of(cfg.loss), Baseline):
                assert isinstance(build(cfg.loss), Baseline)
                continue
            head = build(cfg.loss, embedding_dim=int(cfg.backbone.embedding_dim), num_classes=9)
            assert isinstance(head, ClassificationHead) and head.num_classes == 9
        built = []
        for group in (
            "dataset",
            "backbone",
            "scorer",
            "optimizer",
            "scheduler",
            "protocol",
            "validation",
            "trainer",
            "logger",
            "experiment",
        ):
            for opt in sorted(p.stem for p in (conf / group).glob("*.yaml")):
                cfg = compose("train", overrides=[f"{group}={opt}"])
                _build_option(group, opt, cfg, tmp_path)
                built.append((group, opt))
        assert ("validation", "few_shot") in built and ("scorer", "lof") in built
        assert ("trainer", "default") in built and ("logger", "wandb") in built


def _build_option(group: str, opt: str, cfg, tmp_path) -> None:
    """What one option of ``group`` builds."""
    if group == "dataset":
        assert cfg.dataset.name == opt
        assert isinstance(build_source(as_dict(cfg.dataset)), ImageSource)
    elif group == "scorer":
        assert isinstance(build(cfg.scorer, where="scorer"), Scorer)
    elif group in ("optimizer", "scheduler"):
        params = torch.nn.Linear(2, 2).parameters()
        optimizer = build(cfg.optimizer, where="optimizer")(params)
        assert isinstance(optimizer, torch.optim.Optimizer)
        if cfg.scheduler.get("_target_"):
            scheduler = build(cfg.scheduler, where="scheduler")(optimizer)
            assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    elif group in ("protocol", "validation"):
        protocol = build(cfg.protocol, where="protocol")
        assert isinstance(protocol, Protocol) and protocol.name == cfg.protocol.name
        assert isinstance(protocol.design, ValidationDesign)
    elif group in ("trainer", "logger"):
        _build_runtime(group, opt, cfg, tmp_path / f"{group}-{opt}")


def _build_runtime(group: str, opt: str, cfg, run_dir) -> None:
    """A trainer option builds a Lightning Trainer (GPU ones: or a clear no-GPU error); a
    logger option builds its logger (W&B disabled: no process, no network)."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from omegaconf import OmegaConf, open_dict

    from adabench.build import build_logger, build_trainer
    from adabench.loggers import finish_logger

    if group == "trainer":
        try:
            trainer = build_trainer(cfg, run_dir, False, [])
        except (MisconfigurationException, RuntimeError, ValueError) as err:
            assert opt in ("gpu", "ddp") and not torch.cuda.is_available(), (opt, err)
            assert any(w in str(err).lower() for w in ("gpu", "cuda", "device")), str(err)
            return
        assert isinstance(trainer, L.Trainer)
        return
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        if opt == "wandb":
            cfg.logger.mode = "disabled"
    config = OmegaConf.to_container(cfg, resolve=True)
    logger = build_logger(cfg, run_dir, None, config)
    from adabench.loggers import loggers_of

    kinds = {type(one).__name__ for one in loggers_of(logger)}
    expected = {"none": set(), "csv": {"CSVLogger"}, "wandb": {"WandbLogger", "CSVLogger"}}
    assert kinds == expected[opt], (opt, kinds)
    finish_logger(logger, {})


def test_build_passes_parameters_context_and_nested_targets():
    opt = build({"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.5}, where="optimizer")
    assert isinstance(opt, functools.partial)
    sgd = opt(params=[torch.nn.Parameter(torch.zeros(1))])
    assert sgd.param_groups[0]["lr"] == 0.5
    fraction = {"_target_": "fractions.Fraction", "numerator": 3, "denominator": 4}
    nested = build({"_target_": "builtins.dict", "a": fraction, "b": [fraction, 1]})
    assert str(nested["a"]) == "3/4" and str(nested["b"][0]) == "3/4" and nested["b"][1] == 1
    with pytest.raises(ConfigError, match=r"loss.num_classes is set by adabench at run time"):
        build(
            {"_target_": "adabench.losses.SoftmaxHead", "num_classes": 3},
            where="loss",
            num_classes=4,
            embedding_dim=2,
        )
    with pytest.raises(ConfigError, match=r"scorer has no _target_"):
        build({"k": 3}, where="scorer")


@pytest.mark.parametrize(
    "override,expected",
    [
        ("batch_size=0", "batch_size=0 must be a positive integer, e.g. batch_size=128"),
        ("optimizer.lr=-1", "optimizer.lr=-1 must be a positive number"),
        ("dataset.image_size=4", "dataset.image_size=4 must be an integer >= 8"),
        ("dataset.channels=2", "dataset.channels=2 must be 1 or 3"),
        ("scorer.distance=manhattan", "scorer.distance='manhattan' must be one of cosine, l2"),
        ("scorer.k=abc", "scorer.k='abc' must be a positive integer, e.g. scorer.k=5"),
        ("ema_decay=1.5", "ema_decay=1.5 must be a number in (0, 1), or null (off)"),
        ("seed=abc", "seed='abc' must be an integer, e.g. seed=0"),
    ],
)
def test_values_are_checked_before_anything_heavy_loads(override, expected):
    from adabench.config import check_values

    with pytest.raises(ConfigError) as err:
        check_values(compose_config(override))
    assert str(err.value).startswith(expected)
    check_values(compose_config())  # the defaults pass


def test_a_bad_value_is_refused_before_torch_or_lightning_load(tmp_path):
    code = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "from adabench.resolvers import register\n"
        "from adabench.run import train\n"
        "register()\n"
        f"with initialize_config_dir({str(ROOT / 'conf')!r}, version_base='1.3'):\n"
        "    cfg = compose('train', overrides=['batch_size=0', 'logger=none',"
        f" 'paths.output_dir={tmp_path}'])\n"
        "try:\n"
        "    train(cfg)\n"
        "    raise SystemExit('batch_size=0 was not refused')\n"
        "except Exception as err:\n"
        "    assert type(err).__name__ == 'ConfigError', err\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
