"""Blocked neighbour helpers against full pairwise matrices."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from synthgate.checks import _neighbors
from synthgate.errors import DegenerateInputError


def _brute_two_nearest(query, reference, reference_groups=None, query_groups=None, exclude_self=False):
    """Reference implementation on the full distance matrix."""
    distance = cdist(query, reference)
    if query_groups is not None:
        distance[query_groups[:, None] == reference_groups[None, :]] = np.inf
    if exclude_self:
        np.fill_diagonal(distance, np.inf)
    j1 = distance.argmin(axis=1)
    rows = np.arange(len(query))
    d1 = distance[rows, j1].copy()
    if reference_groups is not None:
        distance[reference_groups[j1][:, None] == reference_groups[None, :]] = np.inf
    else:
        distance[rows, j1] = np.inf
    j2 = distance.argmin(axis=1)
    return d1, j1, distance[rows, j2], j2


@pytest.mark.parametrize("block_rows", [1, 7, 1000])
def test_two_nearest_matches_brute_force(block_rows):
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((40, 5))
    query = rng.standard_normal((23, 5))
    groups = rng.integers(0, 6, size=40)

    got = _neighbors.two_nearest(query, reference, reference_groups=groups, block_rows=block_rows)
    expected = _brute_two_nearest(query, reference, reference_groups=groups)
    for got_part, expected_part in zip(got, expected):
        np.testing.assert_allclose(got_part, expected_part, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block_rows", [3, 1000])
def test_two_nearest_real_baseline_matches_brute_force(block_rows):
    rng = np.random.default_rng(1)
    real = rng.standard_normal((30, 4))
    groups = np.repeat(np.arange(6), 5)

    got = _neighbors.two_nearest(
        real, real, reference_groups=groups, query_groups=groups, block_rows=block_rows
    )
    expected = _brute_two_nearest(real, real, reference_groups=groups, query_groups=groups)
    for got_part, expected_part in zip(got, expected):
        np.testing.assert_allclose(got_part, expected_part, rtol=1e-12, atol=1e-12)
    assert np.all(groups[got[1]] != groups)
    assert np.all(groups[got[3]] != groups[got[1]])


def test_two_nearest_exclude_self():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((15, 3))
    d1, j1, d2, j2 = _neighbors.two_nearest(real, real, exclude_self=True, block_rows=4)
    expected = _brute_two_nearest(real, real, exclude_self=True)
    np.testing.assert_allclose(d1, expected[0], rtol=1e-12)
    np.testing.assert_array_equal(j2, expected[3])
    assert np.all(j1 != np.arange(15))


def test_two_nearest_float32_copy_has_zero_distance():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((20, 256)).astype(np.float32)
    query = reference[[4, 9]].copy()
    d1, j1, _, _ = _neighbors.two_nearest(query, reference)
    assert d1.tolist() == [0.0, 0.0]
    assert j1.tolist() == [4, 9]


def test_two_nearest_without_second_patient_is_degenerate():
    reference = np.arange(6, dtype=float).reshape(3, 2)
    with pytest.raises(DegenerateInputError, match="second-nearest"):
        _neighbors.two_nearest(reference[:1], reference, reference_groups=np.zeros(3, dtype=int))


@pytest.mark.parametrize("block_rows", [1, 4, 100])
def test_similarity_blocks_cover_each_pair_once(block_rows):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((11, 6))
    scale = _neighbors.inverse_row_norms(x, "x")
    unit = x * scale[:, None]
    expected = unit @ unit.T

    seen = np.zeros((11, 11), dtype=int)
    for rows, sim in _neighbors.iter_similarity_blocks(x, scale, block_rows):
        a, b = np.nonzero(np.isfinite(sim))
        seen[a + rows.start, b + rows.start] += 1
        np.testing.assert_allclose(sim[a, b], expected[a + rows.start, b + rows.start], rtol=1e-12)
    np.testing.assert_array_equal(seen, np.triu(np.ones((11, 11), dtype=int), k=1))


def test_inverse_row_norms_rejects_zero_row():
    x = np.array([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(DegenerateInputError, match=r"generated must not contain all-zero rows .*first: row 1"):
        _neighbors.inverse_row_norms(x, "generated")
