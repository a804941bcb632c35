"""Shared validators and the check registry."""

import numpy as np
import pytest

from synthgate.registry import CHECK_SPECS
from synthgate.checks import _validation as v
from synthgate.errors import DegenerateInputError


def test_features_float32_kept_without_copy():
    x = np.zeros((3, 2), dtype=np.float32)
    assert v.validate_features(x, "real") is x


def test_features_integers_become_float64():
    out = v.validate_features(np.ones((2, 3), dtype=np.uint8), "real")
    assert out.dtype == np.float64


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros(5), r"real must be a 2-D array of shape \(n_images, n_features\); got ndim=1"),
        (np.zeros((2, 2, 2)), r"got ndim=3 \(shape=\(2, 2, 2\)\)"),
        (np.array([["a", "b"]]), r"real must have a real numeric dtype; got dtype=<U1"),
        (np.zeros((3, 0)), r"real must have at least one feature column; got shape=\(3, 0\)"),
        (np.array([[0.0, 1.0], [np.nan, 1.0]]), r"real must contain only finite values; got NaN or inf in 1 rows \(first: row 1\)"),
    ],
)
def test_features_rejects_malformed(value, match):
    with pytest.raises(ValueError, match=match):
        v.validate_features(value, "real")


def test_same_features_message():
    with pytest.raises(ValueError, match=r"generated must have as many features as real \(3\); got 4"):
        v.validate_same_features(np.zeros((2, 3)), np.zeros((2, 4)))


def test_min_images_is_degenerate():
    with pytest.raises(DegenerateInputError, match=r"real must contain at least 4 images \(two halves\); got 3"):
        v.require_min_images(3, 4, "real", "two halves")


def test_groups_codes_follow_sorted_ids():
    codes = v.validate_groups(["b", "a", "b", "c"], 4)
    assert codes.tolist() == [1, 0, 1, 2]


def test_groups_none_passes_through():
    assert v.validate_groups(None, 4) is None


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        (["a", "b"], r"real_groups must have one patient id per real image \(3\); got 2"),
        ("abc", r"real_groups must be a sequence with one patient id per image; got a single string"),
        ([["a"], ["b"], ["c"]], r"real_groups must be a 1-D sequence"),
        ([1.0, np.nan, 2.0], r"real_groups must not contain missing ids; got NaN"),
        (np.array(["a", None, "b"], dtype=object), r"real_groups must not contain missing ids; got None"),
        (np.array(["a", 1, "b"], dtype=object), r"real_groups must contain ids of one comparable type"),
    ],
)
def test_groups_rejects_malformed(groups, match):
    with pytest.raises(ValueError, match=match):
        v.validate_groups(groups, 3)


def test_min_groups_is_degenerate():
    with pytest.raises(DegenerateInputError, match=r"real_groups must contain at least 3 distinct patients \(why\); got 2"):
        v.require_min_groups(np.array([0, 1, 1]), 3, "real_groups", "why")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None])
def test_seed_rejects_non_integers(seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer; got"):
        v.validate_seed(seed)


def test_seed_accepts_numpy_integer():
    assert v.validate_seed(np.int64(7)) == 7


def test_int_message_uses_constraint():
    with pytest.raises(ValueError, match=r"max_per_class must be an integer >= 2 \* n_splits \(10\); got 5"):
        v.validate_int(5, "max_per_class", minimum=10, constraint="an integer >= 2 * n_splits (10)")


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, float("nan"), "0.5", True])
def test_number_open_interval(value):
    with pytest.raises(ValueError, match=r"quantile must be a number in \(0, 1\); got"):
        v.validate_number(value, "quantile", low=0.0, high=1.0)


def test_number_closed_upper_bound():
    assert v.validate_number(1, "ratio_threshold", low=0.0, high=1.0, high_inclusive=True) == 1.0


def test_choice_lists_options():
    with pytest.raises(ValueError, match=r"mode must be one of 'a', 'b'; got 'c'"):
        v.validate_choice("c", "mode", ("a", "b"))


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["a"], r"feature_names must have one name per feature \(2\); got 1"),
        (["a", "a"], r"feature_names must be unique; got duplicates \['a'\]"),
        (["a", ""], r"feature_names must be non-empty strings; got ''"),
        ("ab", r"feature_names must be a sequence of 2 strings; got str"),
    ],
)
def test_feature_names_rejects_malformed(names, match):
    with pytest.raises(ValueError, match=match):
        v.validate_feature_names(names, 2)


def test_feature_names_accept_array():
    assert v.validate_feature_names(np.array(["a", "b"]), 2) == ("a", "b")


def test_hashes_rejects_wrong_length_and_type():
    with pytest.raises(ValueError, match=r"real_pixel_hashes must have one hash per image \(3\); got 2"):
        v.validate_hashes(["x", "y"], 3, "real_pixel_hashes")
    with pytest.raises(ValueError, match=r"real_pixel_hashes must contain str or bytes hashes; got 3"):
        v.validate_hashes(["x", "y", 3], 3, "real_pixel_hashes")


def test_registry_names_and_functions():
    assert {"separability_auc", "duplicate_rate", "nearest_real_distance", "texture_gap"} <= set(CHECK_SPECS)
    for name, spec in CHECK_SPECS.items():
        assert spec.name == name
        assert spec.compute.__name__ == f"compute_{name}"
        assert len(spec.statistics) > 0
