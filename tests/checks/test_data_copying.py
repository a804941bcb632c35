"""data_copying: the C_T statistic of Meehan, Chaudhuri and Dasgupta on synthetic features."""

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from synthgate.checks.data_copying import STATISTICS, _mann_whitney_z, compute_data_copying
from synthgate.errors import DegenerateInputError


def _sets(kind, seed=0, n=300):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, 6))
    holdout = rng.normal(size=(n, 6))
    if kind == "copying":
        generated = real[rng.integers(0, n, n)] + rng.normal(scale=0.1, size=(n, 6))
    elif kind == "underfitting":
        generated = rng.normal(scale=2.0, size=(n, 6))
    else:
        generated = rng.normal(size=(n, 6))
    return real, generated, holdout


def test_unseen_generator_gives_c_t_near_zero():
    real, generated, holdout = _sets("unseen")
    result = compute_data_copying(real, generated, holdout=holdout, n_cells=5)
    assert -2.5 < result.statistics["c_t"] < 2.5
    assert result.statistics["cells_used"] == 5


def test_copying_generator_gives_negative_c_t():
    real, generated, holdout = _sets("copying")
    result = compute_data_copying(real, generated, holdout=holdout, n_cells=5)
    assert result.statistics["c_t"] < -3
    assert result.statistics["min_cell_z"] <= result.statistics["c_t"]


def test_underfitting_generator_gives_positive_c_t():
    real, generated, holdout = _sets("underfitting")
    result = compute_data_copying(real, generated, holdout=holdout, n_cells=5)
    assert result.statistics["c_t"] > 3


def test_z_matches_scipy_mann_whitney():
    rng = np.random.default_rng(2)
    generated, holdout = rng.normal(size=40), rng.normal(0.3, size=55)
    z = _mann_whitney_z(generated, holdout)
    u = mannwhitneyu(generated, holdout).statistic
    expected = (u - 40 * 55 / 2) / np.sqrt(40 * 55 * 96 / 12)
    assert z == pytest.approx(expected)


def test_default_cells_follow_holdout_size():
    real, generated, holdout = _sets("unseen")
    result = compute_data_copying(real, generated, holdout=holdout[:45])
    assert result.params["n_cells"] == 2
    assert set(result.statistics) == set(STATISTICS)


def test_small_cells_are_excluded_and_reported():
    real, generated, holdout = _sets("unseen", n=120)
    result = compute_data_copying(real, generated, holdout=holdout[:30], n_cells=6, min_cell_size=8)
    assert result.statistics["cells_used"] < 6
    assert 0 < result.statistics["excluded_holdout_share"] < 1
    assert any(not row["used"] for row in result.evidence.table)


def test_same_seed_gives_identical_numbers():
    real, generated, holdout = _sets("copying")
    first = compute_data_copying(real, generated, holdout=holdout, seed=4)
    second = compute_data_copying(real, generated, holdout=holdout, seed=4)
    assert dict(first.statistics) == dict(second.statistics)


def test_no_usable_cell_is_degenerate():
    real, generated, holdout = _sets("unseen")
    with pytest.raises(DegenerateInputError, match=r"got none of 3 cells"):
        compute_data_copying(real, generated[:4], holdout=holdout, n_cells=3)


def test_more_cells_than_real_images_is_rejected():
    real, generated, holdout = _sets("unseen")
    with pytest.raises(ValueError, match=r"n_cells must be at most the number of real images \(5\); got 6"):
        compute_data_copying(real[:5], generated, holdout=holdout, n_cells=6)
