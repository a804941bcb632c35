"""compute_coverage against a full-distance-matrix oracle, plus anchors, exact ties, invariances and errors."""

import logging

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import euclidean_distances

from synthgate.checks._matched_samples import draw_matched_samples
from synthgate.checks.coverage import STATISTICS, _ball_membership, compute_coverage
from synthgate.errors import DegenerateInputError

K = 5


def _gaussian(rng, n, dim=6, shift=0.0):
    return rng.standard_normal((n, dim)) + shift


def _oracle_scores(reference, query, groups=None, k=K):
    """Coverage, density, precision and recall from full distance matrices, closed balls."""
    within = cdist(reference, reference)
    np.fill_diagonal(within, np.inf)
    if groups is not None:
        within[groups[:, None] == groups[None, :]] = np.inf
    radii = np.sort(within, axis=1)[:, k - 1]
    query_within = cdist(query, query)
    np.fill_diagonal(query_within, np.inf)
    query_radii = np.sort(query_within, axis=1)[:, k - 1]

    distance = cdist(query, reference)
    inside = distance <= radii[None, :]
    return (
        inside.any(axis=0).mean(),
        inside.sum() / (k * len(query)),
        inside.any(axis=1).mean(),
        (distance <= query_radii[:, None]).any(axis=0).mean(),
    )


@pytest.mark.parametrize("grouped", [False, True])
def test_matches_full_matrix_oracle(grouped):
    rng = np.random.default_rng(1)
    real, generated = _gaussian(rng, 120), _gaussian(rng, 80, shift=0.4)
    groups = np.repeat(np.arange(24), 5) if grouped else None
    result = compute_coverage(real, generated, real_groups=groups, n_splits=2, seed=4)

    samples = draw_matched_samples(120, 80, groups, n_splits=2, max_size=1000, min_size=K + 1, rng=np.random.default_rng(4))
    generated_scores, real_scores = [], []
    for sample in samples:
        reference = real[sample.reference]
        reference_groups = groups[sample.reference] if grouped else None
        generated_scores.append(_oracle_scores(reference, generated[sample.generated], reference_groups))
        real_scores.append(_oracle_scores(reference, real[sample.other], reference_groups))
    generated_mean, real_mean = np.mean(generated_scores, axis=0), np.mean(real_scores, axis=0)

    for column, name in enumerate(("coverage", "density", "precision", "recall")):
        assert result.statistics[name] == pytest.approx(generated_mean[column], abs=1e-12), name
        assert result.statistics[f"real_{name}"] == pytest.approx(real_mean[column], abs=1e-12), name


def test_identical_distributions_match_baseline():
    rng = np.random.default_rng(2)
    result = compute_coverage(_gaussian(rng, 600), _gaussian(rng, 2000))
    stats = result.statistics
    assert abs(stats["coverage_deficit"]) < 0.05
    assert 0.85 < stats["density_ratio"] < 1.15
    # For two equal-size samples of one distribution the expected coverage is about
    # 1 - 2^-k, 0.97 for k = 5 (Naeem et al., 2020).
    assert stats["real_coverage"] > 0.9


def test_collapsed_set_lowers_coverage():
    rng = np.random.default_rng(3)
    real = _gaussian(rng, 400)
    collapsed = np.repeat(_gaussian(rng, 3), 100, axis=0)
    stats = compute_coverage(real, collapsed).statistics
    assert stats["coverage_deficit"] > 0.6
    assert stats["recall"] < 0.1
    assert all(np.isfinite(value) for value in stats.values())


def test_shifted_set_lowers_density_and_coverage():
    rng = np.random.default_rng(4)
    real = _gaussian(rng, 400)
    stats = compute_coverage(real, _gaussian(rng, 400, shift=1.0)).statistics
    assert stats["density_ratio"] < 0.5
    assert stats["coverage_deficit"] > 0.3


def test_scores_are_scale_free():
    rng = np.random.default_rng(5)
    real, generated = _gaussian(rng, 200), _gaussian(rng, 200, shift=0.5)
    base = compute_coverage(real, generated, n_splits=2).statistics
    scaled = compute_coverage(10 * real, 10 * generated, n_splits=2).statistics
    for name in STATISTICS:
        assert scaled[name] == pytest.approx(base[name], rel=1e-12), name


def test_same_seed_same_result():
    rng = np.random.default_rng(6)
    real, generated = _gaussian(rng, 150), _gaussian(rng, 300)
    first = compute_coverage(real, generated, seed=7, n_splits=2)
    second = compute_coverage(real, generated, seed=7, n_splits=2)
    other = compute_coverage(real, generated, seed=8, n_splits=2)
    assert dict(first.statistics) == dict(second.statistics)
    assert first.evidence.images == second.evidence.images
    assert first.evidence.table == second.evidence.table
    assert dict(other.statistics) != dict(first.statistics)


def test_exact_copy_inside_zero_radius_ball():
    # Far from the origin the Gram identity |x|^2 + |y|^2 - 2 x.y leaves about 1e-8 for an
    # exact copy, more than the zero radius; the exact recomputation must still count it.
    reference = 1000.0 + np.random.default_rng(2).standard_normal((6, 64))
    query = np.vstack([reference[[0, 4, 5]], reference[0] + 1e-3])
    gram_identity = euclidean_distances(query[:3], reference[[0, 4, 5]], squared=True).diagonal()
    assert gram_identity.max() > 0

    counts, covered = _ball_membership(query, reference, np.zeros(6))
    np.testing.assert_array_equal(counts, [1, 1, 1, 0])
    np.testing.assert_array_equal(covered, [True, False, False, False, True, True])


def test_duplicated_real_rows_give_zero_radius(caplog):
    rng = np.random.default_rng(8)
    distinct = _gaussian(rng, 40)
    # Ten points appear K + 1 times, so their radius is 0; each is its own patient group.
    real = np.vstack([np.repeat(distinct[:10], K + 1, axis=0), distinct[10:]])
    groups = np.concatenate([np.repeat(np.arange(10), K + 1), np.arange(10, 40)])
    generated = np.vstack([distinct[:10], _gaussian(rng, 50)])
    with caplog.at_level(logging.WARNING, logger="synthgate.checks.coverage"):
        result = compute_coverage(real, generated, real_groups=groups, exclude_same_patient=False, n_splits=2)
    assert result.params["zero_radius_real"] == 10 * (K + 1)
    assert "radius 0" in caplog.text
    # The copies cover their zero-radius balls, so no duplicated real row is left uncovered.
    uncovered_rows = {row["real_row"] for row in result.evidence.table}
    assert not uncovered_rows & set(range(10 * (K + 1)))
    assert all(np.isfinite(value) for value in result.statistics.values())


def test_evidence_names_outliers_and_uncovered():
    rng = np.random.default_rng(9)
    real = np.vstack([_gaussian(rng, 150), _gaussian(rng, 30, shift=6.0)])
    outliers = _gaussian(rng, 3, shift=-20.0)
    generated = np.vstack([_gaussian(rng, 147), outliers])
    result = compute_coverage(real, generated, n_evidence=5)
    assert set(result.evidence.images[:3]) == {147, 148, 149}
    assert result.evidence.distributions["generated"].shape == (150,)
    assert len(result.evidence.table) == 5
    for row, pair in zip(result.evidence.table, result.evidence.pairs):
        assert row["real_row"] >= 150
        assert row["real_row"] == pair.real
        assert row["generated_row"] == pair.generated
        assert row["distance"] > row["radius"]
    ratios = [row["distance_to_radius"] for row in result.evidence.table]
    assert ratios == sorted(ratios, reverse=True)
    assert result.params["uncovered_real"] >= 25


def test_result_fields():
    rng = np.random.default_rng(10)
    result = compute_coverage(_gaussian(rng, 100), _gaussian(rng, 150), n_splits=3)
    assert set(result.statistics) == set(STATISTICS)
    assert result.check == "coverage"
    assert result.statistic == "coverage"
    assert result.baseline == result.statistics["real_coverage"]
    low, high = result.interval
    assert low <= result.statistics["coverage"] <= high
    assert result.params["n_comparisons"] == 6
    assert result.params["sample_sizes"] == [50] * 6


def test_dominant_patient_comparisons_skipped(caplog):
    rng = np.random.default_rng(11)
    real = _gaussian(rng, 60)
    # Patient 0 has 40 of 60 images, so the half it lands in gives them too few other patients.
    groups = np.concatenate([np.zeros(40, dtype=int), np.arange(1, 21)])
    with caplog.at_level(logging.WARNING, logger="synthgate.checks.coverage"):
        result = compute_coverage(real, _gaussian(rng, 60), real_groups=groups)
    assert result.params["n_comparisons_skipped"] > 0
    assert result.params["n_comparisons"] + result.params["n_comparisons_skipped"] == 10
    assert "skipped" in caplog.text


def test_no_usable_comparison_rejected():
    rng = np.random.default_rng(12)
    # Two patients of 30 images and three of one image each. Every half contains one large
    # patient and at most three images of other patients.
    groups = np.concatenate([np.zeros(30, dtype=int), np.ones(30, dtype=int), [2, 3, 4]])
    with pytest.raises(DegenerateInputError, match=r"real halves must give every image at least 5 images of other patients"):
        compute_coverage(_gaussian(rng, 63), _gaussian(rng, 30), real_groups=groups)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"real": np.zeros((30, 6, 1))}, r"real must be a 2-D array"),
        ({"generated": np.ones((30, 2))}, r"generated must have as many features as real \(6\); got 2"),
        ({"n_neighbors": 0}, r"n_neighbors must be an integer >= 1; got 0"),
        ({"subset_size": 5}, r"subset_size must be an integer >= n_neighbors \+ 1 \(6\); got 5"),
        ({"exclude_same_patient": "yes"}, r"exclude_same_patient must be a bool; got 'yes'"),
        ({"n_evidence": -1}, r"n_evidence must be an integer >= 0; got -1"),
        ({"seed": 1.5}, r"seed must be a non-negative integer; got 1.5"),
    ],
)
def test_invalid_arguments(kwargs, message):
    rng = np.random.default_rng(13)
    arguments = {"real": _gaussian(rng, 30), "generated": _gaussian(rng, 30)}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        compute_coverage(arguments.pop("real"), arguments.pop("generated"), **arguments)


@pytest.mark.parametrize(
    ("n_real", "n_generated", "groups", "message"),
    [
        (11, 30, None, r"real must contain at least 12 images \(two halves of n_neighbors \+ 1 = 6 images\); got 11"),
        (30, 5, None, r"generated must contain at least 6 images \(n_neighbors \+ 1 = 6\); got 5"),
        (30, 30, ["a"] * 30, r"real_groups must contain at least 2 distinct patients"),
        (30, 30, ["a"] * 26 + ["b"] * 4, r"real must split into two halves of at least 6 images each"),
    ],
)
def test_too_few_images(n_real, n_generated, groups, message):
    rng = np.random.default_rng(14)
    with pytest.raises(DegenerateInputError, match=message):
        compute_coverage(_gaussian(rng, n_real), _gaussian(rng, n_generated), real_groups=groups)


def test_disjoint_real_halves_rejected():
    rng = np.random.default_rng(16)
    # Four patients, each a tight cluster far from the others: no half falls into the other's balls.
    centres = 100.0 * np.eye(6)[:4]
    groups = np.repeat(np.arange(4), 10)
    real = centres[groups] + 0.01 * rng.standard_normal((40, 6))
    with pytest.raises(DegenerateInputError, match=r"real halves must fall into each other's k-NN balls; got real density 0"):
        compute_coverage(real, real.copy(), real_groups=groups, exclude_same_patient=False)


def test_identical_real_rows_rejected():
    generated = _gaussian(np.random.default_rng(15), 30)
    with pytest.raises(DegenerateInputError, match=r"real halves must contain distinct rows; got every k-NN radius 0"):
        compute_coverage(np.ones((30, 6)), generated)


@pytest.mark.realdata
def test_realdata_holdout_passes_rotated_fails(pixel_split):
    """Pixel features of the train split as the real set: unseen patients cover it, rotated slices do not."""
    train, holdout, rotated, groups = (pixel_split[key] for key in ("train", "holdout", "rotated", "groups"))

    unseen = compute_coverage(train, holdout, real_groups=groups).statistics
    turned = compute_coverage(train, rotated, real_groups=groups).statistics
    # Measured with seed 0: deficit -0.03 and density ratio 0.60 for the holdout patients,
    # 0.41 and 0.24 for the rotated slices.
    assert unseen["coverage_deficit"] < 0.2 < turned["coverage_deficit"]
    assert unseen["density_ratio"] > 0.4 > turned["density_ratio"]
