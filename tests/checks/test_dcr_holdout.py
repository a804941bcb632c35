"""dcr_holdout: share of generated images whose closest record is a training image."""

import numpy as np
import pytest

from synthgate.checks.dcr_holdout import STATISTICS, compute_dcr_holdout
from synthgate.errors import DegenerateInputError


def _sets(memorised=False, n_real=150, n_holdout=150, n_generated=300, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, 12))
    holdout = rng.normal(size=(n_holdout, 12))
    if memorised:
        generated = real[rng.integers(0, n_real, n_generated)] + rng.normal(scale=0.05, size=(n_generated, 12))
    else:
        generated = rng.normal(size=(n_generated, 12))
    return real, generated, holdout


def test_unseen_generator_has_no_preference():
    result = compute_dcr_holdout(*_sets()[:2], holdout=_sets()[2])
    assert 0.4 < result.statistics["train_share"] < 0.6
    assert result.statistics["train_share_ci_low"] < 0.6
    assert result.statistics["sdmetrics_score"] > 0.8


def test_memorising_generator_prefers_training():
    real, generated, holdout = _sets(memorised=True)
    result = compute_dcr_holdout(real, generated, holdout=holdout)
    assert result.statistics["train_share"] > 0.95
    assert result.statistics["train_share_ci_low"] > 0.9
    assert result.statistics["sdmetrics_score"] < 0.1


def test_exact_shares_on_a_line():
    real = np.array([[0.0], [10.0]])
    holdout = np.array([[5.0], [20.0]])
    generated = np.array([[1.0], [9.0], [6.0], [19.0]])
    result = compute_dcr_holdout(real, generated, holdout=holdout, n_repeats=1)
    assert result.statistics["train_share"] == 0.5
    assert result.statistics["sdmetrics_score"] == 1.0
    assert result.evidence.pairs[0].generated in (0, 1)


def test_ties_count_one_half():
    real = np.array([[0.0]])
    holdout = np.array([[2.0]])
    result = compute_dcr_holdout(real, np.array([[1.0]]), holdout=holdout)
    assert result.statistics["train_share"] == 0.5


def test_larger_side_is_subsampled_with_spread():
    real, generated, holdout = _sets(n_real=400, n_holdout=40)
    result = compute_dcr_holdout(real, generated, holdout=holdout, n_repeats=6)
    assert result.params["images_per_side"] == 40
    assert result.statistics["train_share_min"] < result.statistics["train_share_max"]
    assert set(result.statistics) == set(STATISTICS)


def test_same_seed_gives_identical_numbers():
    real, generated, holdout = _sets(n_real=300, n_holdout=100)
    first = compute_dcr_holdout(real, generated, holdout=holdout, seed=5)
    second = compute_dcr_holdout(real, generated, holdout=holdout, seed=5)
    assert dict(first.statistics) == dict(second.statistics)


def test_missing_holdout_names_the_fix():
    real, generated, _ = _sets()
    with pytest.raises(ValueError, match=r"holdout must be .*holdout = "):
        compute_dcr_holdout(real, generated)


def test_holdout_with_other_features_is_rejected():
    real, generated, holdout = _sets()
    with pytest.raises(ValueError, match=r"holdout must have as many features as real \(12\); got 3"):
        compute_dcr_holdout(real, generated, holdout=holdout[:, :3])


def test_empty_generated_is_degenerate():
    real, generated, holdout = _sets()
    with pytest.raises(DegenerateInputError, match=r"generated must contain at least 1 image"):
        compute_dcr_holdout(real, generated[:0], holdout=holdout)
