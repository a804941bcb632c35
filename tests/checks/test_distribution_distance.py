"""compute_distribution_distance against a kernel and sqrtm oracle, plus anchors, invariances and errors."""

import logging

import numpy as np
import pytest
import scipy.linalg
from sklearn.metrics.pairwise import polynomial_kernel

from synthgate.checks._matched_samples import draw_matched_samples
from synthgate.checks.distribution_distance import STATISTICS, _half_sample, compute_distribution_distance
from synthgate.errors import DegenerateInputError

FAST = {"n_splits": 2, "n_bootstrap": 40}


def _gaussian(rng, n, dim=8, shift=0.0):
    return rng.standard_normal((n, dim)) + shift


def _oracle_kid(x, y):
    """Unbiased MMD^2 with sklearn's polynomial kernel (gamma = 1/d, coef0 = 1, degree 3)."""
    kxx = polynomial_kernel(x, x, degree=3, coef0=1)
    kyy = polynomial_kernel(y, y, degree=3, coef0=1)
    kxy = polynomial_kernel(x, y, degree=3, coef0=1)
    n, m = len(x), len(y)
    return (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def _oracle_fd(x, y):
    """Frechet distance with np.cov and scipy.linalg.sqrtm, as in the usual FID code."""
    sigma_x, sigma_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_x @ sigma_y)
    return float(np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sigma_x) + np.trace(sigma_y) - 2 * np.trace(root).real)


def _assert_intervals_contain_values(result):
    """Assert that the headline interval and every interval of the evidence table contain their value."""
    low, high = result.interval
    assert low <= result.statistics["kid_normalized"] <= high, (low, result.statistics["kid_normalized"], high)
    for row in result.evidence.table:
        for side in ("generated", "real", "excess"):
            low, value, high = row[f"{side}_ci_low"], row[side], row[f"{side}_ci_high"]
            assert low <= value <= high, f"{row['statistic']} {side}: {value} outside [{low}, {high}]"


def test_matches_kernel_and_sqrtm_oracle():
    rng = np.random.default_rng(1)
    real, generated = _gaussian(rng, 120), _gaussian(rng, 90, shift=0.3)
    result = compute_distribution_distance(real, generated, n_splits=1, n_bootstrap=20, seed=3)

    samples = draw_matched_samples(120, 90, None, n_splits=1, max_size=1000, min_size=10, rng=np.random.default_rng(3))
    expected = {"kid": [], "real_kid": [], "fd": [], "real_fd": []}
    for sample in samples:
        reference = real[sample.reference]
        expected["kid"].append(_oracle_kid(generated[sample.generated], reference))
        expected["real_kid"].append(_oracle_kid(real[sample.other], reference))
        expected["fd"].append(_oracle_fd(generated[sample.generated], reference))
        expected["real_fd"].append(_oracle_fd(real[sample.other], reference))

    for name, values in expected.items():
        assert result.statistics[name] == pytest.approx(np.mean(values), rel=1e-9, abs=1e-12), name
    assert result.statistics["fd_reliable"] == 1.0


def test_identical_distributions_near_baseline():
    rng = np.random.default_rng(2)
    result = compute_distribution_distance(_gaussian(rng, 400), _gaussian(rng, 800), **FAST)
    stats = result.statistics
    assert abs(stats["kid_normalized_excess"]) < 0.02
    assert abs(stats["fd_normalized_excess"]) < 0.05
    assert result.baseline == stats["real_kid_normalized"]


def test_shifted_mean_raises_kid_and_fd():
    rng = np.random.default_rng(3)
    real = _gaussian(rng, 400)
    same = compute_distribution_distance(real, _gaussian(rng, 400), **FAST).statistics
    shifted = compute_distribution_distance(real, _gaussian(rng, 400, shift=0.5), **FAST).statistics
    assert shifted["kid_normalized_excess"] > 0.1 > abs(same["kid_normalized_excess"])
    assert shifted["kid"] > 5 * shifted["real_kid"]
    assert shifted["fd_normalized_excess"] > same["fd_normalized_excess"] + 0.15
    assert shifted["fd"] > shifted["real_fd"]


def test_collapsed_set_raises_fd():
    rng = np.random.default_rng(4)
    real = _gaussian(rng, 400)
    collapsed = np.repeat(_gaussian(rng, 4), 100, axis=0)
    stats = compute_distribution_distance(real, collapsed, **FAST).statistics
    # Four distinct points span at most 3 of the 8 dimensions, so the collapsed covariance
    # misses most of the real variance and the trace terms no longer cancel.
    assert stats["fd_normalized_excess"] > 0.5
    assert all(np.isfinite(value) for value in stats.values())


def test_gated_statistic_is_scale_free():
    rng = np.random.default_rng(5)
    real, generated = _gaussian(rng, 200), _gaussian(rng, 200, shift=0.3)
    base = compute_distribution_distance(real, generated, **FAST).statistics
    scaled = compute_distribution_distance(10 * real, 10 * generated, **FAST).statistics
    for name in ("kid_normalized", "real_kid_normalized", "kid_normalized_excess", "fd_normalized_excess"):
        assert scaled[name] == pytest.approx(base[name], rel=1e-9), name
    # The published KID uses the features as given, so it changes with their scale.
    assert scaled["kid"] > 100 * base["kid"]


def test_same_seed_same_result():
    rng = np.random.default_rng(6)
    real, generated = _gaussian(rng, 150), _gaussian(rng, 300)
    first = compute_distribution_distance(real, generated, seed=11, **FAST)
    second = compute_distribution_distance(real, generated, seed=11, **FAST)
    other = compute_distribution_distance(real, generated, seed=12, **FAST)
    assert dict(first.statistics) == dict(second.statistics)
    assert first.interval == second.interval
    assert first.evidence.table == second.evidence.table
    np.testing.assert_array_equal(first.evidence.distributions["generated"], second.evidence.distributions["generated"])
    assert dict(other.statistics) != dict(first.statistics)


def test_result_fields_and_evidence():
    rng = np.random.default_rng(7)
    result = compute_distribution_distance(_gaussian(rng, 100), _gaussian(rng, 150, shift=0.2), **FAST)
    assert set(result.statistics) == set(STATISTICS)
    assert result.check == "distribution_distance"
    assert result.statistic == "kid_normalized"
    low, high = result.interval
    assert low <= high
    for key in ("generated", "real"):
        values = result.evidence.distributions[key]
        assert values.shape == (FAST["n_bootstrap"],)
        assert np.all(np.isfinite(values))
    rows = {row["statistic"]: row for row in result.evidence.table}
    assert set(rows) == {"kid", "kid_normalized", "fd", "fd_normalized"}
    row = rows["kid_normalized"]
    assert row["generated"] == pytest.approx(result.statistics["kid_normalized"])
    assert row["excess"] == pytest.approx(result.statistics["kid_normalized_excess"])
    assert (row["generated_ci_low"], row["generated_ci_high"]) == result.interval
    assert row["excess_ci_low"] <= row["excess_ci_high"]
    assert "percentile bootstrap" in result.interval_kind
    assert "with replacement" in result.interval_kind
    for name in ("kid", "kid_normalized"):
        assert rows[name]["interval"].startswith("95% percentile bootstrap"), name
    for name in ("fd", "fd_normalized"):
        assert rows[name]["interval"].startswith("95% half-sampling"), name
    assert result.params["seed"] == 0
    assert len(result.params["sample_sizes"]) == 2 * FAST["n_splits"]


def test_samples_match_other_half_and_cap():
    rng = np.random.default_rng(8)
    result = compute_distribution_distance(_gaussian(rng, 300), _gaussian(rng, 900), subset_size=60, **FAST)
    assert result.params["sample_sizes"] == [60] * 4
    assert result.params["reference_sizes"] == [60] * 4

    small = compute_distribution_distance(_gaussian(rng, 300), _gaussian(rng, 40), **FAST)
    assert small.params["sample_sizes"] == [40] * 4
    assert small.params["reference_sizes"] == [150] * 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intervals_contain_values_with_few_images(seed):
    """Fewer images than features, where the FD of a bootstrap resample lies above the estimate."""
    rng = np.random.default_rng(16)
    real, generated = _gaussian(rng, 120, dim=64), _gaussian(rng, 80, dim=64, shift=0.1)
    result = compute_distribution_distance(real, generated, seed=seed, **FAST)
    assert result.statistics["fd_reliable"] == 0.0
    _assert_intervals_contain_values(result)


def test_intervals_contain_values_with_many_images():
    rng = np.random.default_rng(17)
    result = compute_distribution_distance(_gaussian(rng, 400), _gaussian(rng, 300, shift=0.2), **FAST)
    assert result.statistics["fd_reliable"] == 1.0
    _assert_intervals_contain_values(result)


def test_half_sample_takes_half_without_replacement():
    sample = draw_matched_samples(41, 30, None, n_splits=1, max_size=1000, min_size=10, rng=np.random.default_rng(0))[0]
    weights = _half_sample(sample, np.random.default_rng(1))
    for name, rows in (("r", sample.reference), ("o", sample.other), ("g", sample.generated)):
        assert weights[name].shape == (rows.size,), name
        assert set(np.unique(weights[name])) == {0.0, 1.0}, name
        assert weights[name].sum() == rows.size // 2, name


def test_more_comparisons_than_replicates():
    rng = np.random.default_rng(15)
    result = compute_distribution_distance(_gaussian(rng, 300), _gaussian(rng, 300), n_splits=15, n_bootstrap=20)
    assert len(result.params["sample_sizes"]) == 30
    assert result.evidence.distributions["generated"].shape == (20,)
    assert np.all(np.isfinite(result.evidence.distributions["real"]))


def test_fd_flagged_when_fewer_images_than_features(caplog):
    rng = np.random.default_rng(9)
    real, generated = rng.standard_normal((60, 64)), rng.standard_normal((60, 64))
    with caplog.at_level(logging.WARNING, logger="synthgate.checks.distribution_distance"):
        result = compute_distribution_distance(real, generated, **FAST)
    assert result.statistics["fd_reliable"] == 0.0
    assert "singular" in result.params["fd_note"]
    assert "for information only" in caplog.text
    rows = {row["statistic"]: row for row in result.evidence.table}
    assert rows["fd_normalized"]["note"] == result.params["fd_note"]
    assert rows["kid_normalized"]["note"] == ""
    assert all(np.isfinite(value) for value in result.statistics.values())


def test_grouped_halves_keep_patients_apart():
    rng = np.random.default_rng(10)
    # Each patient has its own offset, so halves of different patients differ more than
    # random halves of images do.
    offsets = rng.standard_normal((20, 8)) * 2
    groups = np.repeat(np.arange(20), 15)
    real = offsets[groups] + rng.standard_normal((300, 8))
    grouped = compute_distribution_distance(real, real[::-1].copy(), real_groups=groups, **FAST)
    ungrouped = compute_distribution_distance(real, real[::-1].copy(), **FAST)
    assert grouped.params["grouped"] is True
    assert grouped.params["n_real_patients"] == 20
    assert grouped.statistics["real_kid_normalized"] > 3 * ungrouped.statistics["real_kid_normalized"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"real": np.zeros(30)}, r"real must be a 2-D array"),
        ({"generated": np.ones((30, 3))}, r"generated must have as many features as real \(8\); got 3"),
        ({"subset_size": 5}, r"subset_size must be an integer >= 10; got 5"),
        ({"n_splits": 0}, r"n_splits must be an integer >= 1; got 0"),
        ({"n_bootstrap": 10}, r"n_bootstrap must be an integer >= 20; got 10"),
        ({"seed": -1}, r"seed must be a non-negative integer; got -1"),
        ({"real_groups": [0, 1]}, r"real_groups must have one patient id per real image \(30\); got 2"),
    ],
)
def test_invalid_arguments(kwargs, message):
    rng = np.random.default_rng(11)
    arguments = {"real": rng.standard_normal((30, 8)), "generated": rng.standard_normal((30, 8))}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        compute_distribution_distance(arguments.pop("real"), arguments.pop("generated"), **arguments)


def test_nan_rejected():
    real = np.random.default_rng(12).standard_normal((30, 8))
    real[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"real must contain only finite values; got NaN or inf in 1 rows \(first: row 4\)"):
        compute_distribution_distance(real, real.copy())


@pytest.mark.parametrize(
    ("n_real", "n_generated", "groups", "message"),
    [
        (19, 30, None, r"real must contain at least 20 images \(two halves of at least 10 images\); got 19"),
        (30, 9, None, r"generated must contain at least 10 images \(the smallest sample compared\); got 9"),
        (30, 30, [0] * 30, r"real_groups must contain at least 2 distinct patients"),
        (30, 30, [0] * 25 + [1] * 5, r"real must split into two halves of at least 10 images each; got halves of"),
    ],
)
def test_too_few_images(n_real, n_generated, groups, message):
    rng = np.random.default_rng(13)
    with pytest.raises(DegenerateInputError, match=message):
        compute_distribution_distance(
            rng.standard_normal((n_real, 4)), rng.standard_normal((n_generated, 4)), real_groups=groups
        )


def test_constant_real_rows_rejected():
    generated = np.random.default_rng(14).standard_normal((30, 4))
    with pytest.raises(DegenerateInputError, match=r"real must contain at least one non-zero row"):
        compute_distribution_distance(np.zeros((30, 4)), generated)
    with pytest.raises(DegenerateInputError, match=r"real halves must contain at least 2 distinct rows; got 15 identical"):
        compute_distribution_distance(np.ones((30, 4)), generated)


@pytest.mark.realdata
def test_realdata_holdout_passes_rotated_fails(pixel_split):
    """Pixel features of the train split as the real set: unseen patients pass, rotated slices do not."""
    train, holdout, rotated, groups = (pixel_split[key] for key in ("train", "holdout", "rotated", "groups"))

    unseen = compute_distribution_distance(train, holdout, real_groups=groups, n_bootstrap=40)
    turned = compute_distribution_distance(train, rotated, real_groups=groups, n_bootstrap=40)
    # Measured with seed 0: 0.09 for the holdout patients, 0.35 for the rotated slices.
    assert unseen.statistics["kid_normalized_excess"] < 0.25
    assert turned.statistics["kid_normalized_excess"] > 0.25
    assert unseen.statistics["fd_reliable"] == 0.0


@pytest.mark.realdata
def test_realdata_intervals_contain_values(pixel_split):
    """Pixel features of the train split as the real set: each KID and FD interval contains its value."""
    train, groups = pixel_split["train"], pixel_split["groups"]
    for name in ("holdout", "rotated"):
        result = compute_distribution_distance(train, pixel_split[name], real_groups=groups)
        assert result.statistics["fd_reliable"] == 0.0, name
        _assert_intervals_contain_values(result)
