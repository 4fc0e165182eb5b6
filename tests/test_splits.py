import numpy as np
import pytest

from adabench.data.splits import SplitCounts, make_split, resolve_classes, training_labels
from adabench.errors import ConfigError

CLASSES = [f"c{i}" for i in range(10)]
TRAIN = np.repeat(np.arange(10), 100)  # 100 per class
TEST = np.repeat(np.arange(10), 30)


def split(**kw):
    args = {"normal": "c7", "abnormal": "c9", "seed": 0}
    args.update(kw)
    return make_split(TRAIN, TEST, CLASSES, **args)


def test_counts_follow_the_protocol():
    s = split(
        counts=SplitCounts(n_reference=400, n_normal_train=50, n_test_normal=20, n_test_abnormal=25)
    )
    assert s.sizes() == {
        "reference_train": 400,
        "normal_train": 50,
        "test_normal": 20,
        "test_abnormal": 25,
        "test_reference": 240,
    }
    # reference spread evenly over the 8 other classes
    assert np.bincount(TRAIN[s.reference_train], minlength=10).tolist() == [50] * 7 + [0, 50, 0]
    assert s.num_classes == 9 and s.train_classes[-1] == 7


def test_parts_are_disjoint_and_abnormal_never_trained():
    s = split()
    train = s.train_indices()
    assert len(np.unique(train)) == len(train)
    assert len(np.intersect1d(s.test_normal, s.test_abnormal)) == 0
    assert not np.isin(TRAIN[train], [9]).any()
    assert set(TEST[s.test_abnormal]) == {9} and set(TEST[s.test_normal]) == {7}
    assert 9 not in s.train_classes


def test_same_seed_same_split_other_seed_other_split():
    c = SplitCounts(n_reference=80, n_normal_train=10)
    a, b, other = split(counts=c), split(counts=c), split(counts=c, seed=1)
    assert np.array_equal(a.reference_train, b.reference_train)
    assert np.array_equal(a.normal_train, b.normal_train)
    assert not np.array_equal(a.reference_train, other.reference_train)


def test_names_and_indices_and_lists():
    assert resolve_classes("c3", CLASSES, "normal") == (3,)
    assert resolve_classes(3, CLASSES, "normal") == (3,)
    assert resolve_classes(["c1", 0], CLASSES, "reference") == (0, 1)
    s = split(normal=[7, 8], abnormal="c9", reference=["c0", "c1"])
    assert s.train_classes == (0, 1, 7, 8)


def test_training_labels_map_to_contiguous_ids():
    assert training_labels(np.array([1, 7, 0, 9]), (0, 1, 7)).tolist() == [1, 2, 0, -1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"normal": "c11"}, r"unknown class 'c11'.*0='c0'"),
        ({"normal": 12}, r"class index 12 is out of range; the dataset has 10 classes"),
        ({"normal": "c9"}, r"share class\(es\) \['c9'\]"),
        (
            {"reference": ["c1", "c7"]},
            r"reference overlaps normal/abnormal in class\(es\) \['c7'\]",
        ),
        (
            {"counts": SplitCounts(n_normal_train=101)},
            r"n_normal_train=101 is more than the 100 images",
        ),
        (
            {"counts": SplitCounts(n_test_abnormal=31)},
            r"n_test_abnormal=31 is more than the 30 images",
        ),
        ({"counts": SplitCounts(n_reference=-1)}, r"n_reference must be >= 0"),
    ],
)
def test_bad_split_config_names_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        split(**kwargs)
