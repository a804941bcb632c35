"""compute_nearest_real_distance against a full distance matrix, plus anchors and invariances."""

import hashlib
import logging

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from synthgate.checks import _neighbors
from synthgate.checks.nearest_real_distance import (
    STATISTICS,
    _wilson_interval,
    compute_nearest_real_distance,
)
from synthgate.errors import DegenerateInputError


def _patients(rng, n_patients, slices, dim):
    """Real rows of patients whose slices lie near a patient centre, and their patient ids."""
    centres = rng.standard_normal((n_patients, dim))
    rows = np.repeat(centres, slices, axis=0) + 0.3 * rng.standard_normal((n_patients * slices, dim))
    return rows, np.repeat(np.arange(n_patients), slices)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    real, groups = _patients(rng, 12, 4, dim=6)
    generated = rng.standard_normal((37, 6))
    generated[:3] = real[[5, 17, 40]] + 0.01 * rng.standard_normal((3, 6))
    return real, generated, groups


def _oracle(real, generated, groups, quantile, ratio):
    distance = cdist(generated, real)
    j1 = distance.argmin(axis=1)
    d1 = distance.min(axis=1)
    other = np.where(groups[j1][:, None] == groups[None, :], np.inf, distance)
    d2 = other.min(axis=1)

    real_distance = cdist(real, real)
    real_distance[groups[:, None] == groups[None, :]] = np.inf
    real_j1 = real_distance.argmin(axis=1)
    real_d1 = real_distance.min(axis=1)
    real_other = np.where(groups[real_j1][:, None] == groups[None, :], np.inf, real_distance)
    real_d2 = real_other.min(axis=1)

    threshold = np.quantile(real_d1, quantile)
    return {
        "close_share": np.mean(d1 < threshold),
        "distance_threshold": threshold,
        "ratio_share": np.mean(d1 < ratio * d2),
        "real_ratio_share": np.mean(real_d1 < ratio * real_d2),
        "median_distance": np.median(d1),
        "real_median_distance": np.median(real_d1),
        "d1": d1,
        "j1": j1,
        "real_d1": real_d1,
    }


def test_matches_full_distance_matrix(data):
    real, generated, groups = data
    result = compute_nearest_real_distance(real, generated, real_groups=groups, quantile=0.2, ratio_threshold=0.5)
    expected = _oracle(real, generated, groups, 0.2, 0.5)
    for name in ("close_share", "distance_threshold", "ratio_share", "real_ratio_share", "median_distance", "real_median_distance"):
        assert result.statistics[name] == pytest.approx(expected[name], rel=1e-12), name
    assert result.statistics["close_share_excess"] == pytest.approx(expected["close_share"] - 0.2)
    np.testing.assert_allclose(result.evidence.distributions["generated"], expected["d1"], rtol=1e-12)
    np.testing.assert_allclose(result.evidence.distributions["real"], expected["real_d1"], rtol=1e-12)
    assert result.statistics["ratio_share"] >= 3 / 37


def test_ungrouped_baseline_uses_other_images_and_logs(data, caplog):
    real, generated, _ = data
    with caplog.at_level(logging.WARNING, logger="synthgate.checks.nearest_real_distance"):
        result = compute_nearest_real_distance(real, generated)
    distance = cdist(real, real)
    np.fill_diagonal(distance, np.inf)
    np.testing.assert_allclose(result.evidence.distributions["real"], distance.min(axis=1), rtol=1e-12)
    assert "real_groups not given" in caplog.text
    assert result.params["grouped"] is False


def test_held_out_patients_give_quantile():
    rng = np.random.default_rng(1)
    rows, groups = _patients(rng, 400, 3, dim=5)
    train = groups < 250
    result = compute_nearest_real_distance(rows[train], rows[~train], real_groups=groups[train], quantile=0.1)
    low, high = result.interval
    assert abs(result.statistics["close_share"] - 0.1) < 0.04
    assert low < 0.1 < high


def test_exact_copies_by_distance(data):
    real, _, groups = data
    generated = real[[3, 8, 8, 30]].copy()
    result = compute_nearest_real_distance(real, generated, real_groups=groups)
    assert result.statistics["exact_copies"] == 4
    assert result.statistics["close_share"] == 1.0
    assert [pair.score for pair in result.evidence.pairs] == [0.0] * 4
    assert [pair.real for pair in result.evidence.pairs] == [3, 8, 8, 30]


def test_exact_copies_float32():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((30, 512)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    generated = np.vstack([real[[2, 7]], rng.standard_normal((5, 512)).astype(np.float32)])
    result = compute_nearest_real_distance(real, generated, real_groups=np.arange(30))
    assert result.statistics["exact_copies"] == 2
    assert result.params["search_dtype"] == "float32"


def test_exact_copies_by_hash_listed_first(data):
    real, generated, groups = data
    real_hashes = [hashlib.sha256(row.tobytes()).hexdigest() for row in real]
    generated_hashes = [f"gen-{i}" for i in range(len(generated))]
    generated_hashes[20] = real_hashes[11]
    result = compute_nearest_real_distance(
        real,
        generated,
        real_groups=groups,
        real_pixel_hashes=real_hashes,
        generated_pixel_hashes=generated_hashes,
        n_evidence=4,
    )
    first = result.evidence.pairs[0]
    assert result.statistics["exact_copies"] == 1
    assert (first.generated, first.real) == (20, 11)
    assert first.score == pytest.approx(np.linalg.norm(generated[20] - real[11]))
    assert {pair.generated for pair in result.evidence.pairs[1:]} == {0, 1, 2, 3}
    assert result.params["exact_copies_by"] == "pixel hash"


def test_evidence_pairs_closest_first(data):
    real, generated, groups = data
    pairs = compute_nearest_real_distance(real, generated, real_groups=groups, n_evidence=5).evidence.pairs
    scores = [pair.score for pair in pairs]
    distance = cdist(generated, real)
    assert len(pairs) == 5
    assert scores == sorted(scores)
    assert {pair.generated for pair in pairs[:3]} == {0, 1, 2}
    for pair in pairs:
        assert pair.score == pytest.approx(distance[pair.generated, pair.real])
        assert pair.score_name == "euclidean distance"


def test_blocked_equals_unblocked(data, monkeypatch):
    real, generated, groups = data
    monkeypatch.setattr(_neighbors, "BLOCK_ROWS", 10_000)
    whole = compute_nearest_real_distance(real, generated, real_groups=groups)
    monkeypatch.setattr(_neighbors, "BLOCK_ROWS", 5)
    blocked = compute_nearest_real_distance(real, generated, real_groups=groups)
    assert dict(blocked.statistics) == dict(whole.statistics)
    assert blocked.evidence.pairs == whole.evidence.pairs


def test_row_order_invariance(data):
    real, generated, groups = data
    rng = np.random.default_rng(3)
    order_g, order_r = rng.permutation(len(generated)), rng.permutation(len(real))
    result = compute_nearest_real_distance(real, generated, real_groups=groups)
    permuted = compute_nearest_real_distance(real[order_r], generated[order_g], real_groups=groups[order_r])
    for name in STATISTICS:
        assert permuted.statistics[name] == pytest.approx(result.statistics[name], rel=1e-12), name
    np.testing.assert_allclose(
        permuted.evidence.distributions["generated"], result.evidence.distributions["generated"][order_g]
    )


def test_result_fields(data):
    real, generated, groups = data
    result = compute_nearest_real_distance(real, generated, real_groups=groups)
    assert set(result.statistics) == set(STATISTICS)
    assert result.statistic == "close_share"
    assert result.baseline == 0.05
    assert result.statistics["expected_close_share"] == 0.05
    assert result.interval[0] <= result.statistics["close_share"] <= result.interval[1]


def test_wilson_interval_known_values():
    z2 = 1.959963984540054**2
    low, high = _wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(z2 / (10 + z2))
    low, high = _wilson_interval(10, 10)
    assert low == pytest.approx(10 / (10 + z2))
    assert high == pytest.approx(1.0)
    assert _wilson_interval(5, 100) == pytest.approx((0.02154, 0.11175), abs=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantile": 0.0}, r"quantile must be a number in \(0, 1\); got 0.0"),
        ({"quantile": 1.2}, r"quantile must be a number in \(0, 1\); got 1.2"),
        ({"ratio_threshold": 0}, r"ratio_threshold must be a number in \(0, 1\]; got 0"),
        ({"n_evidence": -1}, r"n_evidence must be an integer >= 0; got -1"),
        ({"real_groups": [0] * 3}, r"real_groups must have one patient id per real image \(10\); got 3"),
        ({"real_pixel_hashes": ["a"] * 10}, r"must be given together; got only real_pixel_hashes"),
        (
            {"real_pixel_hashes": ["a"] * 10, "generated_pixel_hashes": ["b"] * 2},
            r"generated_pixel_hashes must have one hash per image \(5\); got 2",
        ),
    ],
)
def test_rejects_bad_options(kwargs, match):
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match=match):
        compute_nearest_real_distance(rng.standard_normal((10, 3)), rng.standard_normal((5, 3)), **kwargs)


def test_rejects_malformed_arrays():
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match=r"generated must be a 2-D array"):
        compute_nearest_real_distance(rng.standard_normal((10, 3)), rng.standard_normal((2, 2, 3)))
    with pytest.raises(ValueError, match=r"generated must have as many features as real \(3\); got 2"):
        compute_nearest_real_distance(rng.standard_normal((10, 3)), rng.standard_normal((5, 2)))


def test_degenerate_inputs():
    rng = np.random.default_rng(6)
    real = rng.standard_normal((10, 3))
    with pytest.raises(DegenerateInputError, match=r"real must contain at least 3 images .*; got 2"):
        compute_nearest_real_distance(real[:2], real)
    with pytest.raises(DegenerateInputError, match=r"generated must contain at least 1 image; got 0"):
        compute_nearest_real_distance(real, real[:0])
    with pytest.raises(DegenerateInputError, match=r"real_groups must contain at least 3 distinct patients .*; got 2"):
        compute_nearest_real_distance(real, real, real_groups=[0] * 5 + [1] * 5)
