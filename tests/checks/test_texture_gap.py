"""compute_texture_gap against a direct SMD computation, plus anchors and invariances."""

import logging

import numpy as np
import pytest

from synthgate.checks._splits import split_halves
from synthgate.checks.texture_gap import STATISTICS, compute_texture_gap
from synthgate.errors import DegenerateInputError

NAMES = ("mean", "std", "glcm_contrast", "glcm_energy", "lbp_0", "lbp_1")


def _direct_smd(real, generated):
    """Cohen's d with the textbook pooled variance (ddof=1 in each set)."""
    n_r, n_g = len(real), len(generated)
    pooled = ((n_r - 1) * real.var(axis=0, ddof=1) + (n_g - 1) * generated.var(axis=0, ddof=1)) / (n_r + n_g - 2)
    return (generated.mean(axis=0) - real.mean(axis=0)) / np.sqrt(pooled)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    scales = np.array([100.0, 10.0, 1.0, 0.01, 0.001, 1e4])
    real = rng.standard_normal((60, 6)) * scales
    generated = rng.standard_normal((45, 6)) * scales
    generated[:, 2] += 1.5 * scales[2]
    groups = np.repeat(np.arange(12), 5)
    return real, generated, groups


def test_matches_direct_smd(data):
    real, generated, groups = data
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups, n_worst=6)
    smd = _direct_smd(real, generated)
    table = {row["feature"]: row for row in result.evidence.table}

    for k, name in enumerate(NAMES):
        assert table[name]["smd"] == pytest.approx(smd[k], rel=1e-10)
        assert table[name]["mean_real"] == pytest.approx(real[:, k].mean())
        assert table[name]["mean_generated"] == pytest.approx(generated[:, k].mean())
    assert result.statistics["median_abs_smd"] == pytest.approx(np.median(np.abs(smd)), rel=1e-10)
    assert result.statistics["max_abs_smd"] == pytest.approx(np.abs(smd).max(), rel=1e-10)
    np.testing.assert_allclose(result.evidence.distributions["generated"], np.abs(smd), rtol=1e-10)


def test_shifted_feature_tops_table(data):
    real, generated, groups = data
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups, n_worst=3)
    worst = result.evidence.table[0]
    assert [row["feature"] for row in result.evidence.table][0] == "glcm_contrast"
    assert len(result.evidence.table) == 3
    assert worst["smd"] > 1.0
    assert worst["smd"] > worst["real_split_max_abs_smd"]
    assert result.statistics["share_features_beyond_real"] >= 1 / 6


def test_real_split_baseline_by_hand(data):
    real, generated, groups = data
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups, n_splits=3, seed=9)
    rng = np.random.default_rng(9)
    split_abs = []
    for _ in range(3):
        first, second = split_halves(len(real), groups, rng)
        split_abs.append(np.abs(_direct_smd(real[first], real[second])))
    split_abs = np.array(split_abs)
    expected = np.median(split_abs, axis=1).mean()
    beyond = np.mean(np.abs(_direct_smd(real, generated)) > split_abs.max(axis=0))

    assert result.statistics["real_median_abs_smd"] == pytest.approx(expected, rel=1e-10)
    assert result.statistics["median_abs_smd_excess"] == pytest.approx(result.statistics["median_abs_smd"] - expected)
    assert result.statistics["share_features_beyond_real"] == pytest.approx(beyond)
    np.testing.assert_allclose(np.sort(result.evidence.distributions["real"]), np.sort(split_abs.ravel()), rtol=1e-10)


def test_split_halves_keep_patients_apart():
    rng = np.random.default_rng(1)
    groups = np.array([0] * 40 + [1] * 3 + [2] * 3 + list(range(3, 20)))
    for _ in range(10):
        first, second = split_halves(len(groups), groups, rng)
        assert set(groups[first]).isdisjoint(groups[second])
        assert len(first) + len(second) == len(groups)
        assert len(first) > 0
        assert len(second) > 0


def test_split_halves_by_image_sizes():
    first, second = split_halves(11, None, np.random.default_rng(2))
    assert (len(first), len(second)) == (5, 6)
    assert sorted(np.concatenate([first, second]).tolist()) == list(range(11))


def test_real_against_itself_within_baseline():
    rng = np.random.default_rng(3)
    pool = rng.standard_normal((400, 20))
    names = [f"f{k}" for k in range(20)]
    result = compute_texture_gap(pool[:200], pool[200:], feature_names=names)
    assert result.statistics["median_abs_smd"] < 0.15
    assert result.statistics["max_abs_smd"] < 0.4


def test_scale_and_shift_invariance(data):
    real, generated, groups = data
    a = np.array([3.0, 0.5, 10.0, 2.0, 7.0, 0.1])
    b = np.array([1.0, -4.0, 0.0, 9.0, 3.0, 100.0])
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups)
    moved = compute_texture_gap(real * a + b, generated * a + b, feature_names=NAMES, real_groups=groups)
    assert dict(moved.statistics) == pytest.approx(dict(result.statistics), rel=1e-9)


def test_generated_order_invariance(data):
    real, generated, groups = data
    order = np.random.default_rng(4).permutation(len(generated))
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups)
    permuted = compute_texture_gap(real, generated[order], feature_names=NAMES, real_groups=groups)
    assert dict(permuted.statistics) == pytest.approx(dict(result.statistics), rel=1e-12)


def test_real_order_keeps_generated_statistics(data):
    real, generated, groups = data
    order = np.random.default_rng(5).permutation(len(real))
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups)
    permuted = compute_texture_gap(real[order], generated, feature_names=NAMES, real_groups=groups[order])
    assert permuted.statistics["median_abs_smd"] == pytest.approx(result.statistics["median_abs_smd"], rel=1e-12)
    assert permuted.statistics["max_abs_smd"] == pytest.approx(result.statistics["max_abs_smd"], rel=1e-12)


def test_seed_determinism(data):
    real, generated, groups = data
    first = compute_texture_gap(real, generated, feature_names=NAMES, seed=1)
    second = compute_texture_gap(real, generated, feature_names=NAMES, seed=1)
    other = compute_texture_gap(real, generated, feature_names=NAMES, seed=2)
    assert dict(first.statistics) == dict(second.statistics)
    assert first.statistics["real_median_abs_smd"] != other.statistics["real_median_abs_smd"]


def test_result_fields(data):
    real, generated, groups = data
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups)
    assert set(result.statistics) == set(STATISTICS)
    assert result.statistic == "median_abs_smd"
    assert result.baseline == result.statistics["real_median_abs_smd"]
    assert result.params["n_splits"] == 20
    assert result.params["dropped_features"] == ()
    assert set(result.evidence.table[0]) == {"feature", "smd", "real_split_max_abs_smd", "mean_real", "mean_generated"}


def test_constant_in_both_sets_is_dropped(data, caplog):
    real, generated, groups = data
    real[:, 4] = 0.25
    generated[:, 4] = 0.25
    with caplog.at_level(logging.WARNING, logger="synthgate.checks.texture_gap"):
        result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups)
    assert result.params["dropped_features"] == ("lbp_0",)
    assert result.params["n_features"] == 5
    assert "lbp_0" in caplog.text
    assert "lbp_0" not in {row["feature"] for row in result.evidence.table}


def test_constant_only_in_real_has_zero_split_smd(data):
    real, generated, groups = data
    real[:, 5] = 3.0
    result = compute_texture_gap(real, generated, feature_names=NAMES, real_groups=groups, n_worst=6)
    row = next(row for row in result.evidence.table if row["feature"] == "lbp_1")
    assert row["real_split_max_abs_smd"] == 0.0
    assert row["smd"] != 0.0


def test_different_constants_are_degenerate(data):
    real, generated, _ = data
    real[:, 1] = 1.0
    generated[:, 1] = 2.0
    with pytest.raises(DegenerateInputError, match=r"constant in both sets at different values .*\['std'\]"):
        compute_texture_gap(real, generated, feature_names=NAMES)


def test_all_constant_is_degenerate():
    with pytest.raises(DegenerateInputError, match=r"got every feature constant"):
        compute_texture_gap(np.ones((6, 2)), np.ones((4, 2)), feature_names=["a", "b"])


def test_split_with_two_constants_is_degenerate():
    real = np.array([[0.0, 1.0]] * 3 + [[1.0, 2.0]] * 3)
    generated = np.array([[0.3, 0.1], [0.5, 0.9], [0.1, 0.2]])
    with pytest.raises(DegenerateInputError, match=r"between real halves; got two different constant values"):
        compute_texture_gap(real, generated, feature_names=["a", "b"], real_groups=[0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"feature_names": NAMES[:5]}, r"feature_names must have one name per feature \(6\); got 5"),
        ({"n_splits": 0}, r"n_splits must be an integer >= 1; got 0"),
        ({"n_worst": -1}, r"n_worst must be an integer >= 0; got -1"),
        ({"real_groups": [1, 2]}, r"real_groups must have one patient id per real image \(60\); got 2"),
    ],
)
def test_rejects_bad_options(data, kwargs, match):
    real, generated, _ = data
    options = {"feature_names": NAMES} | kwargs
    with pytest.raises(ValueError, match=match):
        compute_texture_gap(real, generated, **options)


def test_rejects_malformed_arrays(data):
    real, generated, _ = data
    with pytest.raises(ValueError, match=r"real must be a 2-D array"):
        compute_texture_gap(real[:, 0], generated, feature_names=NAMES)
    with pytest.raises(ValueError, match=r"generated must have as many features as real \(6\); got 5"):
        compute_texture_gap(real, generated[:, :5], feature_names=NAMES)


def test_too_few_images_is_degenerate(data):
    real, generated, _ = data
    with pytest.raises(DegenerateInputError, match=r"real must contain at least 4 images .*; got 3"):
        compute_texture_gap(real[:3], generated, feature_names=NAMES)
    with pytest.raises(DegenerateInputError, match=r"generated must contain at least 2 images .*; got 1"):
        compute_texture_gap(real, generated[:1], feature_names=NAMES)
    with pytest.raises(DegenerateInputError, match=r"real_groups must contain at least 2 distinct patients"):
        compute_texture_gap(real, generated, feature_names=NAMES, real_groups=[0] * 60)
