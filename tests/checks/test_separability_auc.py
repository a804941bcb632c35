"""compute_separability_auc: pairwise-count oracle, anchors, determinism and validation."""

import numpy as np
import pytest

from synthgate.checks.separability_auc import STATISTICS, compute_separability_auc
from synthgate.errors import DegenerateInputError


def _pairwise_auc(negative, positive):
    """AUC by counting: share of (positive, negative) pairs ordered correctly, ties count 1/2."""
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return (greater + 0.5 * ties) / (len(positive) * len(negative))


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((120, 5))
    generated = rng.standard_normal((150, 5))
    return real, generated


def test_auc_matches_pairwise_count(blobs):
    real, generated = blobs
    generated = generated + 0.4
    result = compute_separability_auc(real, generated, n_repeats=1)
    scores = result.evidence.distributions
    assert result.statistics["auc"] == pytest.approx(_pairwise_auc(scores["real"], scores["generated"]), abs=1e-12)
    assert len(scores["real"]) == len(scores["generated"]) == 120


def test_shuffled_split_of_one_set_is_near_chance():
    rng = np.random.default_rng(1)
    pool = rng.standard_normal((1000, 6))
    result = compute_separability_auc(pool[:200], pool[200:])
    assert abs(result.statistics["auc"] - 0.5) < 0.05
    assert result.statistics["auc"] < result.statistics["chance_upper"]


def test_shifted_features_are_separable(blobs):
    real, generated = blobs
    result = compute_separability_auc(real, generated + 1.5)
    assert result.statistics["auc"] > 0.9
    assert result.statistics["auc"] > result.statistics["chance_upper"]


def test_chance_upper_formula(blobs):
    real, generated = blobs
    result = compute_separability_auc(real, generated, max_per_class=100)
    m = 100
    assert result.params["per_class"] == m
    assert result.statistics["chance_upper"] == pytest.approx(0.5 + 1.959964 * np.sqrt((2 * m + 1) / (12 * m * m)))


def test_interval_and_spread_over_repeats(blobs):
    real, generated = blobs
    result = compute_separability_auc(real, generated + 0.3, n_repeats=4)
    low, high = result.interval
    assert low <= result.statistics["auc"] <= high
    assert result.statistics["auc_std"] > 0
    assert result.interval_kind == "min-max over 4 repeats"
    assert len(result.evidence.distributions["real"]) == 4 * 120


def test_single_repeat_has_zero_std(blobs):
    real, generated = blobs
    result = compute_separability_auc(real, generated, n_repeats=1)
    assert result.statistics["auc_std"] == 0.0
    assert result.interval == (result.statistics["auc"], result.statistics["auc"])


def test_evidence_images_are_most_generated_like(blobs):
    real, generated = blobs
    generated = generated[:120] + np.array([1.0, 0, 0, 0, 0])
    generated[[7, 30, 99], 0] += 5.0
    result = compute_separability_auc(real, generated, n_evidence=3)
    assert set(result.evidence.images) == {7, 30, 99}


def test_seed_determinism(blobs):
    real, generated = blobs
    first = compute_separability_auc(real, generated + 0.2, seed=3)
    second = compute_separability_auc(real, generated + 0.2, seed=3)
    other = compute_separability_auc(real, generated + 0.2, seed=4)
    assert dict(first.statistics) == dict(second.statistics)
    np.testing.assert_array_equal(first.evidence.distributions["real"], second.evidence.distributions["real"])
    assert first.statistics["auc"] != other.statistics["auc"]


def test_row_order_changes_only_sampling(blobs):
    real, generated = blobs
    order = np.random.default_rng(5).permutation(len(generated))
    result = compute_separability_auc(real, generated + 1.0)
    permuted = compute_separability_auc(real, (generated + 1.0)[order])
    assert permuted.statistics["chance_upper"] == result.statistics["chance_upper"]
    assert permuted.statistics["auc"] == pytest.approx(result.statistics["auc"], abs=0.03)


def test_groups_stop_patient_leakage():
    # Each real patient has its own indicator feature; generated images have none. A model
    # that saw other slices of the same patient recognises the indicator, one that did not
    # has never seen it active and gives it zero weight.
    rng = np.random.default_rng(6)
    patients = np.repeat(np.arange(10), 12)
    indicators = 5.0 * np.eye(10)[patients]
    real = np.hstack([indicators, rng.standard_normal((120, 2))])
    generated = np.hstack([np.zeros((120, 10)), rng.standard_normal((120, 2))])
    leaky = compute_separability_auc(real, generated, n_repeats=2)
    grouped = compute_separability_auc(real, generated, real_groups=patients, n_repeats=2)
    assert leaky.statistics["auc"] > 0.9
    assert grouped.statistics["auc"] < 0.65


def test_groups_accepted_and_recorded(blobs):
    real, generated = blobs
    groups = np.repeat([f"p{k}" for k in range(12)], 10)
    result = compute_separability_auc(real, generated + 1.0, real_groups=groups)
    assert result.params["grouped"] is True
    assert result.statistics["auc"] > 0.8


def test_result_fields(blobs):
    real, generated = blobs
    result = compute_separability_auc(real, generated)
    assert set(result.statistics) == set(STATISTICS)
    assert result.statistic == "auc"
    assert result.baseline == 0.5
    assert result.baseline_kind == "chance"
    assert result.params["seed"] == 0
    assert result.params["chance_upper_method"] == "Mann-Whitney normal approximation"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_splits": 1}, r"n_splits must be an integer >= 2; got 1"),
        ({"n_repeats": 0}, r"n_repeats must be an integer >= 1; got 0"),
        ({"max_per_class": 9}, r"max_per_class must be an integer >= 2 \* n_splits \(10\); got 9"),
        ({"seed": 1.0}, r"seed must be a non-negative integer; got 1.0"),
        ({"real_groups": np.arange(5)}, r"real_groups must have one patient id per real image \(120\); got 5"),
    ],
)
def test_rejects_bad_options(blobs, kwargs, match):
    real, generated = blobs
    with pytest.raises(ValueError, match=match):
        compute_separability_auc(real, generated, **kwargs)


def test_rejects_malformed_arrays(blobs):
    real, generated = blobs
    with pytest.raises(ValueError, match=r"real must be a 2-D array .*got ndim=1"):
        compute_separability_auc(real[:, 0], generated)
    with pytest.raises(ValueError, match=r"generated must have as many features as real \(5\); got 4"):
        compute_separability_auc(real, generated[:, :4])


def test_too_few_images_is_degenerate(blobs):
    real, generated = blobs
    with pytest.raises(DegenerateInputError, match=r"real must contain at least 10 images \(2 \* n_splits with n_splits=5\); got 9"):
        compute_separability_auc(real[:9], generated)
    with pytest.raises(DegenerateInputError, match=r"generated must contain at least 6 images .*; got 5"):
        compute_separability_auc(real, generated[:5], n_splits=3)


def test_single_patient_is_degenerate(blobs):
    real, generated = blobs
    with pytest.raises(DegenerateInputError, match=r"real_groups must contain at least 2 distinct patients"):
        compute_separability_auc(real, generated, real_groups=["p"] * 120)


def test_constant_features_are_degenerate():
    with pytest.raises(DegenerateInputError, match=r"every feature constant over both sets"):
        compute_separability_auc(np.ones((20, 3)), np.ones((20, 3)))
