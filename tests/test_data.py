import numpy as np
import pytest
import torch
from PIL import Image

from adabench.data.augment import augment_batch, random_hflip, random_pad_crop
from adabench.data.datamodule import AnomalyDataModule
from adabench.data.folder import decode_image, load_image_folder
from adabench.data.images import ImagePool, fit_images
from adabench.data.pools import cache_key, load_pool
from adabench.data.sources import Digits, Torchvision, build_source
from adabench.errors import ConfigError, DataError

DIGITS = {
    "name": "digits",
    "_target_": "adabench.data.sources.Digits",
    "normal": 1,
    "abnormal": 7,
    "image_size": 16,
    "channels": 1,
    "n_reference": 80,
    "n_normal_train": 30,
    "n_test_normal": 20,
    "n_test_abnormal": 20,
    "n_test_reference": 40,
    "pad_crop": 2,
}


def test_pad_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = random_pad_crop(x, 2, g)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, [2] * 4, mode="reflect")
    for i in range(2):
        hits = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[i, :, dy : dy + 8, dx : dx + 8], out[i])
        ]
        assert hits, "each output must be a window of the padded input"


def test_flip_and_uint8_preserved():
    x = torch.randint(0, 255, (64, 1, 6, 6), dtype=torch.uint8)
    out = random_hflip(x, 0.5, torch.Generator().manual_seed(1))
    flipped = [
        torch.equal(o, xi.flip(-1)) and not torch.equal(o, xi) for o, xi in zip(out, x, strict=True)
    ]
    same = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f or s for f, s in zip(flipped, same, strict=True)) and 10 < sum(flipped) < 54
    assert augment_batch(x, pad=1, hflip=True).dtype == torch.uint8


def test_fit_images_resizes_and_converts_channels():
    x = torch.randint(0, 255, (3, 1, 8, 8), dtype=torch.uint8)
    assert fit_images(x, 16, 3).shape == (3, 3, 16, 16)
    rgb = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    assert fit_images(rgb, 4, 1).unique().tolist() == [100]


def test_digits_pool_is_cached_and_keyed(tmp_path):
    source = build_source(DIGITS)
    pool = load_pool("train", source, tmp_path)
    assert pool.images.dtype == torch.uint8 and pool.images.shape[1:] == (1, 16, 16)
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1
    again = load_pool("train", source, tmp_path)
    assert torch.equal(again.images, pool.images)
    assert cache_key("train", source) != cache_key("train", Digits(20, 1))
    assert cache_key("train", source) != cache_key("train", Digits(16, 1, holdout_seed=1))
    assert cache_key("train", source) != cache_key("test", source)
    # a corrupt cache file is rebuilt, not trusted
    files[0].write_bytes(b"garbage")
    assert torch.equal(load_pool("train", source, tmp_path).images, pool.images)


def test_bad_dataset_source_names_the_value_and_the_choices():
    with pytest.raises(ConfigError, match=r"dataset._target_='adabench.data.sources.Cifar100'"):
        build_source({**DIGITS, "_target_": "adabench.data.sources.Cifar100"})
    with pytest.raises(
        ConfigError,
        match=r"dataset.root is not a parameter of adabench.data.sources.Digits. Valid parameters:"
        r" image_size, channels, test_fraction, holdout_seed",
    ):
        build_source({**DIGITS, "root": "/data"})


class Stripes(Digits):
    """A dataset defined outside src/: the digits with a bright stripe on the abnormal class."""

    def load(self, split):
        pool = super().load(split)
        pool.images[pool.labels == 7, :, :, 0] = 255
        return pool


def test_a_dataset_from_outside_src_runs_through_the_config(tmp_path):
    dm = AnomalyDataModule(
        {**DIGITS, "_target_": f"{__name__}.Stripes"}, seed=0, cache_dir=str(tmp_path)
    )
    dm.setup()
    stripe = dm.test_images[:, :, :, 0].float().mean(dim=(1, 2))  # the left edge, blank in digits
    is_abnormal = dm.test_is_abnormal.bool()
    assert stripe[is_abnormal].min() > stripe[~is_abnormal].max()


def test_missing_torchvision_data_says_where_and_how(tmp_path):
    with pytest.raises(
        DataError,
        match=r"FashionMNIST train data not found under .*FashionMNIST.*"
        r"dataset.download=true.*dataset.root=",
    ):
        load_pool("train", Torchvision(16, 1, "FashionMNIST", str(tmp_path), download=False))


def test_datamodule_split_and_batches(tmp_path):
    dm = AnomalyDataModule(DIGITS, seed=0, batch_size=16, cache_dir=str(tmp_path))
    dm.setup()
    assert dm.num_classes == 9
    assert len(dm.train_images) == 110 and len(dm.normal_images) == 30
    assert dm.test_is_abnormal.sum() == 20 and len(dm.test_images) == 40
    assert set(dm.train_labels.tolist()) == set(range(9))
    assert set(dm.closed_labels.tolist()) <= set(range(9)) and len(dm.closed_labels) == 60
    batches = list(dm.train_dataloader())
    assert len(batches) == 110 // 16 and batches[0][0].shape == (16, 1, 16, 16)
    assert batches[0][0].dtype == torch.uint8
    summary = dm.summary()
    assert (
        summary["normal"] == ["1"]
        and summary["abnormal"] == ["7"]
        and "7" not in summary["reference"]
    )


def test_folder_tree_loads(image_tree):
    pool = load_image_folder(image_tree / "train", size=16, channels=3)
    assert pool.classes == ["a", "b", "c", "d"] and pool.images.shape == (48, 3, 16, 16)


def test_decode_handles_modes(tmp_path):
    arr16 = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 600).astype(np.uint16)
    Image.fromarray(arr16).save(tmp_path / "g16.png")
    Image.new("RGBA", (30, 20), (10, 200, 30, 128)).save(tmp_path / "rgba.png")
    Image.new("L", (5, 5), 77).save(tmp_path / "gray.png")
    Image.new("P", (5, 5)).save(tmp_path / "pal.gif")
    for name in ("g16.png", "rgba.png", "gray.png", "pal.gif"):
        for ch in (1, 3):
            out = decode_image(tmp_path / name, 8, ch)
            assert out.shape == (ch, 8, 8) and out.dtype == np.uint8
    g16 = decode_image(tmp_path / "g16.png", 10, 1)
    assert g16.max() > 200  # 16-bit range mapped onto 8 bits, not clipped to 255 everywhere
    assert decode_image(tmp_path / "rgba.png", 8, 3)[1].mean() == pytest.approx(200, abs=1)


def test_folder_errors(tmp_path, image_tree):
    with pytest.raises(DataError, match=r"does not exist.*dataset.root="):
        load_image_folder(tmp_path / "nope", 16, 3)
    (image_tree / "train" / "empty").mkdir()
    with pytest.raises(DataError, match=r"Class folder .*empty holds no images"):
        load_image_folder(image_tree / "train", 16, 3)


def test_test_classes_are_aligned_by_name(tmp_path):
    from adabench.data.images import align_classes

    train = ImagePool(
        torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 2]), ["a", "b", "c"]
    )
    test = ImagePool(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1]), ["b", "c"])
    assert align_classes(train, test).labels.tolist() == [1, 2]
    extra = ImagePool(test.images, test.labels, ["b", "z"])
    with pytest.raises(DataError, match=r"Test classes \['z'\] have no train folder"):
        align_classes(train, extra)
