"""compute_image_outliers: central ranges, the cross-fitted real share and the evidence."""

import numpy as np
import pytest

from synthgate.checks.image_outliers import STATISTICS, compute_image_outliers
from synthgate.checks._splits import split_halves
from synthgate.errors import DegenerateInputError

NAMES = ("mean_intensity", "body_fraction", "lung_fraction", "laplacian_variance", "entropy")


def _properties(n, seed):
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.normal(140, 15, n), rng.uniform(0.5, 0.9, n), rng.uniform(0.1, 0.3, n),
        rng.lognormal(7, 0.3, n), rng.normal(6.5, 0.2, n),
    ])


@pytest.fixture
def real():
    return _properties(200, seed=0)


@pytest.fixture
def groups():
    return np.repeat(np.arange(40), 5)


def test_share_matches_direct_count(real, groups):
    generated = _properties(100, seed=1)
    generated[:10, 1] = 0.02  # almost blank slices
    result = compute_image_outliers(real, generated, feature_names=NAMES, real_groups=groups)
    low, high = np.percentile(real, [0.5, 99.5], axis=0)
    outside = ((generated < low) | (generated > high)).any(axis=1)
    assert result.statistics["outlier_share"] == pytest.approx(outside.mean())
    assert result.statistics["outlier_share"] >= 0.10
    assert set(range(10)) <= set(result.evidence.images)
    assert result.evidence.table[1]["share_below"] >= 0.10


def test_worst_outliers_first(real, groups):
    generated = _properties(50, seed=1)
    generated[7, 3] = 1e6  # far too sharp
    generated[3, 1] = 0.3  # a little below the body range
    result = compute_image_outliers(real, generated, feature_names=NAMES, real_groups=groups, n_evidence=2)
    assert result.evidence.images == (7, 3)


def test_real_share_by_hand(real, groups):
    generated = _properties(50, seed=1)
    result = compute_image_outliers(real, generated, feature_names=NAMES, real_groups=groups, n_splits=2, seed=3)
    rng = np.random.default_rng(3)
    shares = []
    for _ in range(2):
        first, second = split_halves(len(real), groups, rng)
        flagged = 0
        for fit, judged in ((first, second), (second, first)):
            low, high = np.percentile(real[fit], [0.5, 99.5], axis=0)
            flagged += ((real[judged] < low) | (real[judged] > high)).any(axis=1).sum()
        shares.append(flagged / len(real))
    assert result.statistics["real_outlier_share"] == pytest.approx(np.mean(shares))
    assert result.baseline == result.statistics["real_outlier_share"]


def test_same_distribution_has_no_excess(real, groups):
    result = compute_image_outliers(real, _properties(300, seed=5), feature_names=NAMES, real_groups=groups)
    assert result.statistics["outlier_share_excess"] < 0.03
    assert result.statistics["real_outlier_share"] < 0.15


def test_wider_percentiles_flag_fewer(real, groups):
    generated = _properties(100, seed=1)
    narrow = compute_image_outliers(real, generated, feature_names=NAMES, lower_percentile=10.0, upper_percentile=90.0)
    wide = compute_image_outliers(real, generated, feature_names=NAMES, lower_percentile=0.0, upper_percentile=100.0)
    assert narrow.statistics["outlier_share"] > wide.statistics["outlier_share"]


def test_fields_and_determinism(real, groups):
    generated = _properties(60, seed=2)
    first = compute_image_outliers(real, generated, feature_names=NAMES, real_groups=groups, seed=4)
    second = compute_image_outliers(real, generated, feature_names=NAMES, real_groups=groups, seed=4)
    assert dict(first.statistics) == dict(second.statistics)
    assert set(first.statistics) == set(STATISTICS)
    assert [row["property"] for row in first.evidence.table] == list(NAMES)
    assert first.statistics["outlier_share_excess"] == pytest.approx(
        first.statistics["outlier_share"] - first.statistics["real_outlier_share"]
    )


def test_constant_property_is_degenerate(real):
    real = real.copy()
    real[:, 2] = 0.2
    with pytest.raises(DegenerateInputError, match=r"properties must vary within the real set; got a central range of zero width for \['lung_fraction'\]"):
        compute_image_outliers(real, _properties(10, seed=1), feature_names=NAMES)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lower_percentile": 60.0}, r"lower_percentile must be a number in \[0, 50\); got 60.0"),
        ({"upper_percentile": 40.0}, r"upper_percentile must be a number in \(50, 100\]; got 40.0"),
        ({"n_splits": 0}, "n_splits must be an integer >= 1; got 0"),
        ({"seed": -1}, "seed must be a non-negative integer; got -1"),
    ],
)
def test_rejects_bad_options(real, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_image_outliers(real, _properties(10, seed=1), feature_names=NAMES, **kwargs)


def test_too_few_images_is_degenerate():
    with pytest.raises(DegenerateInputError, match="real must contain at least 4 images"):
        compute_image_outliers(_properties(3, seed=0), _properties(10, seed=1), feature_names=NAMES)
    with pytest.raises(DegenerateInputError, match="real_groups must contain at least 2 distinct patients"):
        compute_image_outliers(_properties(10, seed=0), _properties(10, seed=1), feature_names=NAMES, real_groups=[0] * 10)
