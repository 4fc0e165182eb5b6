"""What a new user meets first: required values, early class checks, progress, audit files,
short errors, the report's order, colours and chance level."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from adabench import progress as progress_module
from adabench.console import LOG_INTERVAL_S, refresh_interval
from adabench.data import folder as folder_module
from adabench.data import sources
from adabench.data.datamodule import AnomalyDataModule
from adabench.errors import ConfigError
from adabench.run import train
from adabench.scoring import KNNScorer

from .conftest import compose_config, folder_args


def _folder(root, **extra):
    return {
        "name": "folder",
        "_target_": "adabench.data.sources.ImageFolder",
        "root": str(root),
        "normal": "a",
        "abnormal": "b",
        "image_size": 16,
        "channels": 3,
        **extra,
    }


def test_required_values_are_named_with_an_example(tmp_path):
    cfg = compose_config("dataset=folder", f"paths.output_dir={tmp_path}", "logger=none")
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert str(err.value) == (
        "dataset.abnormal, dataset.normal, dataset.root are required and not set; add them to "
        "the command, e.g. dataset.abnormal=scratch dataset.normal=ok dataset.root=/data/parts"
    )


def test_class_names_are_checked_before_any_image_is_decoded(image_tree, monkeypatch, tmp_path):
    def no_decoding(*args, **kwargs):
        raise AssertionError("images were decoded before the class names were checked")

    monkeypatch.setattr(sources, "load_image_folder", no_decoding)
    dm = AnomalyDataModule(_folder(image_tree, normal="aa"), cache_dir=str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"dataset.normal: unknown class 'aa'. Valid classes: .*a"
    ):
        dm.setup()


def test_decoding_a_large_folder_shows_progress(image_tree, monkeypatch, capsys):
    monkeypatch.setattr(folder_module, "PROGRESS_FROM", 10)
    folder_module.load_image_folder(image_tree / "train", 16, 3)
    assert "decoding" in capsys.readouterr().err
    monkeypatch.setattr(folder_module, "PROGRESS_FROM", 10_000)
    folder_module.load_image_folder(image_tree / "train", 16, 3)
    assert "decoding" not in capsys.readouterr().err


def test_progress_bars_written_to_a_log_update_rarely(tmp_path, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert refresh_interval(Terminal()) == pytest.approx(0.1)
    assert refresh_interval(io.StringIO()) == LOG_INTERVAL_S  # nohup / SLURM / CI logs

    def redraws(interval) -> int:
        """Times a 10-batch epoch's bar is drawn into pytest's stderr (not a terminal)."""
        monkeypatch.setattr(progress_module, "refresh_interval", interval)
        cfg = compose_config(
            "dataset.n_reference=120",
            "batch_size=16",  # 160 training images: 10 batches
            "logger=none",
            "trainer.enable_progress_bar=true",
            f"paths.output_dir={tmp_path / str(len(drawn))}",
        )
        capsys.readouterr()
        train(cfg)
        return capsys.readouterr().err.count("Epoch 0:")

    drawn: list[int] = []
    drawn.append(redraws(lambda *_: 0.0))  # as on a terminal: every batch
    drawn.append(redraws(refresh_interval))  # the real choice: stderr is a file here
    assert drawn[0] >= 20  # the count and the metrics of each of the 10 batches
    assert drawn[1] <= 7  # the start, the first batch, the epoch's end: not every batch


def test_run_folder_records_the_split_and_on_request_the_embeddings(tmp_path, image_tree):
    run = tmp_path / "run"
    cfg = compose_config(
        *folder_args(image_tree, "a", "b"),
        "scorer.k=3",
        "save_embeddings=true",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={run}",
    )
    train(cfg)
    split = json.loads((run / "split.json").read_text())
    parts = split["parts"]
    assert {p: len(v["ids"]) for p, v in parts.items()} == json.loads(
        (run / "metrics.json").read_text()
    )["data"]["sizes"]
    assert all(i.startswith("a/") for i in parts["normal_train"]["ids"])
    assert all(i.startswith("b/") for i in parts["test_abnormal"]["ids"])
    assert {i.split("/")[0] for i in parts["reference_train"]["ids"]} == {"c", "d"}
    for part in parts.values():  # every recorded file exists in the pool it names
        root = image_tree / part["pool"]
        assert all((root / i).is_file() for i in part["ids"])

    def files(*names):
        return {f"{parts[p]['pool']}/{i}" for p in names for i in parts[p]["ids"]}

    assert files("reference_train", "normal_train").isdisjoint(
        files("test_normal", "test_abnormal")
    )
    # the saved embeddings reproduce the saved scores
    emb = np.load(run / "embeddings.npz")
    normal = emb["train"][emb["train_is_normal"]]
    again = KNNScorer(3, "cosine").fit(normal).score(emb["test"])
    np.testing.assert_allclose(np.load(run / "scores.npz")["score"], again, rtol=1e-6)
    assert len(emb["train_labels"]) == len(emb["train"])


def test_no_embeddings_unless_asked(tmp_path):
    train(compose_config("logger=none", f"paths.output_dir={tmp_path}"))
    assert (tmp_path / "split.json").is_file() and not (tmp_path / "embeddings.npz").exists()


def test_a_failure_is_one_line_unless_the_traceback_is_asked_for(tmp_path, monkeypatch, capsys):
    from adabench import console
    from adabench.console import report_failure

    monkeypatch.setattr(console, "_FIRST_WITH", {})  # no earlier job of this process printed it
    monkeypatch.delenv("ADABENCH_TRACEBACK", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    err = ConfigError("scorer.k=41 must be between 1 and 40.")
    assert report_failure(err, "arcface-digits-s0", tmp_path, in_sweep=False) is False
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "[adabench] error: ConfigError: scorer.k=41 must be between 1 and 40.",
        f"[adabench] arcface-digits-s0 failed; traceback in {tmp_path / 'train.log'} "
        "(or set ADABENCH_TRACEBACK=1)",
    ]
    assert report_failure(err, "x", tmp_path, in_sweep=True) is False
    assert (
        capsys.readouterr().err
        == "[adabench] FAILED x: ConfigError: scorer.k=41 must be between 1 and 40.\n"
    )
    monkeypatch.setenv("ADABENCH_TRACEBACK", "1")
    assert report_failure(err, "x", tmp_path, in_sweep=False) is True  # the caller re-raises


def test_plots_share_one_loss_order_and_one_colour_per_loss():
    from adabench.report.plots import loss_colours, loss_order

    rows = [
        {"loss": n, "baseline": "pixels" if n.startswith("baseline") else ""}
        for n in ("cosface", "baseline_pixels", "zeta", "softmax", "arcface")
    ]
    baselines = {"baseline_pixels"}
    assert loss_order(["zeta", "cosface", "baseline_pixels", "softmax", "arcface"], baselines) == [
        "baseline_pixels",
        "softmax",
        "arcface",
        "cosface",
        "zeta",
    ]
    colours = loss_colours(rows)
    assert colours["baseline_pixels"].startswith("0.")  # grey
    trained = [colours[n] for n in ("softmax", "arcface", "cosface", "zeta")]
    assert len(set(trained)) == 4 and not any(c.startswith("0.") for c in trained)
    assert loss_colours(list(reversed(rows))) == colours  # independent of the rows' order


@pytest.mark.parametrize(
    ("values", "shown"),
    [([0.55, 0.62, 0.7], True), ([0.95, 0.96, 0.97], False)],
)
def test_the_box_plot_shows_chance_level_or_says_where_it_is(values, shown):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adabench.report.plots import _chance_axis

    fig, ax = plt.subplots()
    _chance_axis(ax, values, "auroc")
    low, high = ax.get_ylim()
    texts = " ".join(t.get_text() for t in ax.texts)
    if shown:
        assert low < 0.5 < high and "chance 0.5" in texts
    else:
        assert low > 0.5 and "chance level 0.5 is below the axis" in texts
    plt.close(fig)


def test_a_skipped_job_leaves_no_empty_folder(tmp_path, capsys):
    """Resume found the result in another job folder (the sweep's overrides were spelled
    differently): the new job folder Hydra made holds nothing of its own and is removed."""
    from adabench.context import RunContext

    sweep = tmp_path / "sweep"
    first = sweep / "arcface-digits-s0-aaaaaa"
    cfg = compose_config("logger=none", f"paths.output_dir={first}")
    train(cfg, RunContext(sweep_dir=sweep))
    second = sweep / "arcface-digits-s0-bbbbbb"
    (second / ".hydra").mkdir(parents=True)
    cfg = compose_config("logger=none", f"paths.output_dir={second}")
    train(cfg, RunContext(sweep_dir=sweep))
    assert f"already completed in {first}" in capsys.readouterr().out
    assert not second.exists() and (first / "metrics.json").exists()
