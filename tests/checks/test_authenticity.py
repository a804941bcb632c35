"""authenticity: Alaa et al.'s authenticity of the generated set against the holdout's."""

import numpy as np
import pytest

from synthgate.checks.authenticity import STATISTICS, compute_authenticity
from synthgate.errors import DegenerateInputError


def _sets(memorised=False, seed=0, n=200):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, 10))
    holdout = rng.normal(size=(n, 10))
    if memorised:
        generated = real[rng.integers(0, n, n)] + rng.normal(scale=0.02, size=(n, 10))
    else:
        generated = rng.normal(size=(n, 10))
    return real, generated, holdout


def test_unseen_generator_matches_holdout():
    real, generated, holdout = _sets()
    result = compute_authenticity(real, generated, holdout=holdout)
    assert abs(result.statistics["authenticity_gap"]) < 0.1
    assert result.statistics["cohens_h_ci_low"] < 0.2


def test_memorising_generator_is_unauthentic():
    real, generated, holdout = _sets(memorised=True)
    result = compute_authenticity(real, generated, holdout=holdout)
    assert result.statistics["authenticity"] < 0.1
    assert result.statistics["cohens_h_ci_low"] > 0.5
    assert result.evidence.pairs[0].score < 1


def test_definition_on_a_line():
    real = np.array([[0.0], [1.0], [10.0]])
    generated = np.array([[0.2], [5.0]])
    holdout = np.array([[5.0], [20.0]])
    result = compute_authenticity(real, generated, holdout=holdout, n_repeats=1)
    # 0.2 is nearer to 0 than 0 is to 1: unauthentic; 5 is 4 from 1, whose neighbour is 1 away.
    assert result.statistics["authenticity"] == 0.5
    assert result.statistics["holdout_authenticity"] == 1.0
    assert result.statistics["authenticity_gap"] == 0.5


def test_groups_exclude_the_same_patient():
    real = np.array([[0.0], [0.1], [10.0], [10.1]])
    generated = np.array([[0.05]])
    holdout = np.array([[5.0]])
    without = compute_authenticity(real, generated, holdout=holdout, n_repeats=1)
    grouped = compute_authenticity(real, generated, holdout=holdout, real_groups=["a", "a", "b", "b"], n_repeats=1)
    assert without.statistics["authenticity"] == 0.0
    assert grouped.statistics["authenticity"] == 0.0
    assert grouped.params["grouped"] is True


def test_statistics_and_determinism():
    real, generated, holdout = _sets()
    first = compute_authenticity(real, generated[:150], holdout=holdout, seed=2)
    second = compute_authenticity(real, generated[:150], holdout=holdout, seed=2)
    assert set(first.statistics) == set(STATISTICS)
    assert dict(first.statistics) == dict(second.statistics)
    assert first.params["images_per_side"] == 150


def test_single_patient_is_degenerate():
    real, generated, holdout = _sets()
    with pytest.raises(DegenerateInputError, match=r"real_groups must contain at least 2 distinct patients"):
        compute_authenticity(real, generated, holdout=holdout, real_groups=["a"] * len(real))


def test_missing_holdout_names_the_fix():
    real, generated, _ = _sets()
    with pytest.raises(ValueError, match=r"holdout must be"):
        compute_authenticity(real, generated)
