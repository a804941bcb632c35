"""compute_duplicate_rate against an all-pairs oracle, plus anchors and invariances."""

import logging

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from synthgate.checks import _neighbors
from synthgate.checks.duplicate_rate import STATISTICS, compute_duplicate_rate
from synthgate.errors import DegenerateInputError

THRESHOLD = 0.95


def _clustered(rng, sizes, n_single, dim=16):
    """Rows in tight clusters (cosine about 0.999 within) followed by independent singletons."""
    rows = []
    for size in sizes:
        centre = rng.standard_normal(dim)
        rows.append(centre + 0.03 * rng.standard_normal((size, dim)))
    rows.append(rng.standard_normal((n_single, dim)))
    return np.vstack(rows)


def _similarity(x):
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit @ unit.T


def _oracle_rates(x, groups=None):
    """Pair and image fractions from the full similarity matrix, same-group pairs excluded."""
    n = len(x)
    eligible = ~np.eye(n, dtype=bool)
    if groups is not None:
        eligible &= groups[:, None] != groups[None, :]
    hit = (_similarity(x) >= THRESHOLD) & eligible
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    return hit[upper & eligible].mean(), hit.any(axis=1).mean(), hit


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    generated = _clustered(rng, [6, 4, 3], n_single=27)
    real = _clustered(rng, [5, 4], n_single=31)
    groups = np.concatenate([[0, 0, 0, 1, 1], [2, 2, 2, 2], np.arange(3, 34)])
    return real, generated, groups


def test_matches_all_pairs_oracle(data):
    real, generated, groups = data
    result = compute_duplicate_rate(
        real, generated, real_groups=groups, exclude_same_patient=True, min_similarity=THRESHOLD
    )
    pair_fraction, image_fraction, hit = _oracle_rates(generated)
    real_pair_fraction, real_image_fraction, _ = _oracle_rates(real, groups)
    _, labels = connected_components(hit, directed=False)
    largest = np.bincount(labels).max()

    stats = result.statistics
    assert stats["pair_fraction"] == pytest.approx(pair_fraction, abs=1e-12)
    assert stats["image_fraction"] == pytest.approx(image_fraction, abs=1e-12)
    assert stats["full_pair_fraction"] == pytest.approx(pair_fraction, abs=1e-12)
    assert stats["real_pair_fraction"] == pytest.approx(real_pair_fraction, abs=1e-12)
    assert stats["real_image_fraction"] == pytest.approx(real_image_fraction, abs=1e-12)
    assert stats["pair_fraction_excess"] == pytest.approx(pair_fraction - real_pair_fraction, abs=1e-12)
    assert stats["largest_cluster"] == largest == 6
    assert stats["largest_cluster_share"] == pytest.approx(6 / 40)
    np.testing.assert_array_equal(result.evidence.distributions["degree"], hit.sum(axis=1))


def test_real_baseline_skips_same_patient_pairs(data):
    real, generated, groups = data
    grouped = compute_duplicate_rate(real, generated, real_groups=groups, exclude_same_patient=True)
    ungrouped = compute_duplicate_rate(real, generated)
    # The first real cluster spans patients 0 and 1; the second lies within patient 2.
    assert grouped.statistics["real_image_fraction"] == pytest.approx(5 / 40)
    assert ungrouped.statistics["real_image_fraction"] == pytest.approx(9 / 40)


def test_subsamples_match_oracle_when_generated_is_larger():
    rng = np.random.default_rng(1)
    generated = _clustered(rng, [20, 10], n_single=70)
    real = rng.standard_normal((30, 16))
    result = compute_duplicate_rate(real, generated, n_repeats=4, seed=5)

    draw = np.random.default_rng(5)
    fractions = []
    for _ in range(4):
        index = np.sort(draw.choice(100, size=30, replace=False))
        fractions.append(_oracle_rates(generated[index])[0])
    assert result.statistics["pair_fraction"] == pytest.approx(np.mean(fractions), abs=1e-12)
    assert result.interval == pytest.approx((min(fractions), max(fractions)), abs=1e-12)
    assert result.statistics["full_pair_fraction"] == pytest.approx(_oracle_rates(generated)[0], abs=1e-12)
    assert result.params["subsample_size"] == 30


def test_copies_of_one_image_are_all_duplicates():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((30, 8))
    generated = np.repeat(real[:1], 30, axis=0)
    stats = compute_duplicate_rate(real, generated).statistics
    assert stats["pair_fraction"] == 1.0
    assert stats["image_fraction"] == 1.0
    assert stats["largest_cluster"] == 30
    assert stats["largest_cluster_share"] == 1.0


def test_blocked_equals_unblocked(data, monkeypatch):
    real, generated, groups = data
    monkeypatch.setattr(_neighbors, "BLOCK_ROWS", 10_000)
    whole = compute_duplicate_rate(real, generated, real_groups=groups)
    monkeypatch.setattr(_neighbors, "BLOCK_ROWS", 3)
    blocked = compute_duplicate_rate(real, generated, real_groups=groups)
    assert dict(blocked.statistics) == dict(whole.statistics)
    assert blocked.evidence.clusters == whole.evidence.clusters
    assert blocked.evidence.generated_pairs == whole.evidence.generated_pairs
    np.testing.assert_array_equal(blocked.evidence.distributions["degree"], whole.evidence.distributions["degree"])


def test_components_merge_across_blocks(monkeypatch):
    rng = np.random.default_rng(3)
    base = rng.standard_normal(12)
    generated = base + 0.01 * rng.standard_normal((50, 12))
    monkeypatch.setattr(_neighbors, "BLOCK_ROWS", 4)
    result = compute_duplicate_rate(rng.standard_normal((50, 12)), generated)
    assert result.statistics["largest_cluster"] == 50
    assert result.statistics["full_pair_fraction"] == 1.0


def test_chain_joins_one_cluster(monkeypatch):
    # Unit vectors 10 degrees apart: cos 10 deg = 0.985 joins neighbours, cos 20 deg = 0.940 does not.
    angles = np.deg2rad(10.0 * np.arange(20))
    generated = np.column_stack([np.cos(angles), np.sin(angles)])
    real = np.random.default_rng(4).standard_normal((20, 2))
    monkeypatch.setattr(_neighbors, "BLOCK_ROWS", 3)
    result = compute_duplicate_rate(real, generated)
    assert result.statistics["largest_cluster"] == 20
    assert result.statistics["full_pair_fraction"] == pytest.approx(19 / 190)


def test_clusters_largest_first_and_capped():
    rng = np.random.default_rng(5)
    generated = _clustered(rng, [5, 30, 3, 2], n_single=20)
    result = compute_duplicate_rate(rng.standard_normal((60, 16)), generated)
    clusters = result.evidence.clusters
    assert [len(cluster) for cluster in clusters] == [24, 5, 3]
    assert set(clusters[0]) <= set(range(5, 35))
    assert set(clusters[1]) == set(range(5))
    assert set(clusters[2]) == set(range(35, 38))


def test_evidence_lists_most_similar_pairs(data):
    real, generated, _ = data
    pairs = compute_duplicate_rate(real, generated, n_evidence=5).evidence.generated_pairs
    similarity = _similarity(generated)
    values = [value for _, _, value in pairs]
    assert len(pairs) == 5
    assert values == sorted(values, reverse=True)
    assert min(values) >= THRESHOLD
    for row_a, row_b, value in pairs:
        assert row_a < row_b
        assert value == pytest.approx(similarity[row_a, row_b])


def test_row_order_invariance(data):
    real, generated, groups = data
    rng = np.random.default_rng(6)
    order_g, order_r = rng.permutation(len(generated)), rng.permutation(len(real))
    result = compute_duplicate_rate(real, generated, real_groups=groups)
    permuted = compute_duplicate_rate(real[order_r], generated[order_g], real_groups=groups[order_r])
    for name in STATISTICS:
        assert permuted.statistics[name] == pytest.approx(result.statistics[name], abs=1e-12), name
    np.testing.assert_array_equal(
        permuted.evidence.distributions["degree"], result.evidence.distributions["degree"][order_g]
    )


def test_row_scale_invariance(data):
    real, generated, groups = data
    factors = np.random.default_rng(7).uniform(0.1, 10.0, size=(len(generated), 1))
    result = compute_duplicate_rate(real, generated, real_groups=groups)
    scaled = compute_duplicate_rate(real, generated * factors, real_groups=groups)
    assert dict(scaled.statistics) == pytest.approx(dict(result.statistics), abs=1e-12)


def test_seeded_subsamples_are_deterministic():
    rng = np.random.default_rng(8)
    generated = _clustered(rng, [15, 10], n_single=75)
    real = rng.standard_normal((25, 16))
    first = compute_duplicate_rate(real, generated, seed=3)
    second = compute_duplicate_rate(real, generated, seed=3)
    other = compute_duplicate_rate(real, generated, seed=4)
    assert dict(first.statistics) == dict(second.statistics)
    assert first.interval == second.interval
    assert first.interval != other.interval


def test_result_fields(data):
    real, generated, groups = data
    result = compute_duplicate_rate(real, generated, real_groups=groups, seed=2)
    assert set(result.statistics) == set(STATISTICS)
    assert result.statistic == "pair_fraction"
    assert result.baseline == result.statistics["real_pair_fraction"]
    assert result.params["seed"] == 2
    assert result.params["min_similarity"] == 0.95
    assert result.interval_kind == "single value: all generated images used"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_similarity": 0.0}, r"min_similarity must be a number in \(0, 1\]; got 0.0"),
        ({"min_similarity": 1.5}, r"min_similarity must be a number in \(0, 1\]; got 1.5"),
        ({"n_repeats": 0}, r"n_repeats must be an integer >= 1; got 0"),
        ({"seed": -1}, r"seed must be a non-negative integer; got -1"),
        ({"real_groups": [0, 1]}, r"real_groups must have one patient id per real image \(10\); got 2"),
    ],
)
def test_rejects_bad_options(kwargs, match):
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match=match):
        compute_duplicate_rate(rng.standard_normal((10, 3)), rng.standard_normal((10, 3)), **kwargs)


def test_rejects_malformed_arrays():
    rng = np.random.default_rng(10)
    with pytest.raises(ValueError, match=r"real must be a 2-D array"):
        compute_duplicate_rate(rng.standard_normal(10), rng.standard_normal((10, 3)))
    with pytest.raises(ValueError, match=r"generated must have as many features as real \(3\); got 4"):
        compute_duplicate_rate(rng.standard_normal((10, 3)), rng.standard_normal((10, 4)))


def test_degenerate_inputs():
    rng = np.random.default_rng(11)
    real = rng.standard_normal((10, 3))
    with pytest.raises(DegenerateInputError, match=r"generated must contain at least 2 images \(a pair is needed\); got 1"):
        compute_duplicate_rate(real, real[:1])
    with pytest.raises(DegenerateInputError, match=r"generated must not contain all-zero rows"):
        compute_duplicate_rate(real, np.vstack([real[:5], np.zeros((1, 3))]))
    with pytest.raises(DegenerateInputError, match=r"real_groups must contain at least 2 distinct patients"):
        compute_duplicate_rate(real, real, real_groups=["p"] * 10, exclude_same_patient=True)


def test_mixed_precision_uses_float64(data):
    real, generated, groups = data
    result = compute_duplicate_rate(real.astype(np.float32), generated, real_groups=groups)
    single = compute_duplicate_rate(real.astype(np.float32), generated.astype(np.float32), real_groups=groups)
    assert result.params["similarity_dtype"] == "float64"
    assert single.params["similarity_dtype"] == "float32"


def test_groups_ignored_unless_excluding(data):
    real, generated, groups = data
    with_groups = compute_duplicate_rate(real, generated, real_groups=groups)
    without_groups = compute_duplicate_rate(real, generated)
    assert with_groups.statistics == without_groups.statistics


def test_exclusion_needs_groups(data):
    real, generated, _ = data
    with pytest.raises(ValueError, match="real_groups must be given when exclude_same_patient is True"):
        compute_duplicate_rate(real, generated, exclude_same_patient=True)
