"""patient_exposure: per training patient, generated images closer than unseen images are."""

import numpy as np
import pytest
from scipy.stats import betabinom

from synthgate.checks.patient_exposure import STATISTICS, _holm, compute_patient_exposure


def _patients(n_patients, n_slices, rng, prefix):
    centres = rng.normal(scale=10.0, size=(n_patients, 8))
    rows = np.repeat(centres, n_slices, axis=0) + rng.normal(scale=0.5, size=(n_patients * n_slices, 8))
    groups = [f"{prefix}{i}" for i in range(n_patients) for _ in range(n_slices)]
    return rows, groups


def _sets(memorise_patient=None, seed=0):
    """Training patients, and generated and holdout images as random halves of unseen patients' slices."""
    rng = np.random.default_rng(seed)
    real, groups = _patients(8, 15, rng, "p")
    unseen, _ = _patients(16, 15, rng, "u")
    order = rng.permutation(len(unseen))
    holdout, generated = unseen[order[:120]], unseen[order[120:]].copy()
    if memorise_patient is not None:
        slices = real[[i for i, group in enumerate(groups) if group == memorise_patient]]
        generated[:40] = slices[rng.integers(0, len(slices), 40)] + rng.normal(scale=0.05, size=(40, 8))
    return real, generated, holdout, groups


def test_unseen_patients_are_not_exposed():
    real, generated, holdout, groups = _sets()
    result = compute_patient_exposure(real, generated, holdout=holdout, real_groups=groups)
    assert result.statistics["exposed_patients"] == 0
    assert result.statistics["patients"] == 8


def test_memorised_patient_is_named_first():
    real, generated, holdout, groups = _sets(memorise_patient="p3")
    result = compute_patient_exposure(real, generated, holdout=holdout, real_groups=groups)
    assert result.statistics["exposed_patients"] >= 1
    assert result.evidence.table[0]["patient"] == "p3"
    assert result.evidence.table[0]["exposed"] is True
    assert result.evidence.pairs[0].score_name == "distance to patient p3"


def test_expected_share_is_rank_over_holdout_size():
    real, generated, holdout, groups = _sets()
    result = compute_patient_exposure(real, generated, holdout=holdout, real_groups=groups, quantile=0.1)
    k = int(np.floor(0.1 * (len(holdout) + 1)))
    assert result.statistics["expected_share"] == pytest.approx(k / (len(holdout) + 1))
    assert set(result.statistics) == set(STATISTICS)


def test_holm_adjustment():
    adjusted = _holm(np.array([0.01, 0.04, 0.03, 0.5]))
    assert adjusted.tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])


def test_null_count_distribution_is_beta_binomial():
    # Exchangeable generated and holdout values: the count below the k-th holdout value.
    rng = np.random.default_rng(0)
    n_generated, n_holdout, k = 30, 19, 2
    counts = [np.sum(rng.random(n_generated) < np.sort(rng.random(n_holdout))[k - 1]) for _ in range(4000)]
    assert np.mean(counts) == pytest.approx(betabinom.mean(n_generated, k, n_holdout + 1 - k), rel=0.05)


def test_missing_groups_name_the_fix():
    real, generated, holdout, _ = _sets()
    with pytest.raises(ValueError, match=r"real_groups must give the patient .*--groups"):
        compute_patient_exposure(real, generated, holdout=holdout)


def test_invalid_quantile_is_rejected():
    real, generated, holdout, groups = _sets()
    with pytest.raises(ValueError, match=r"quantile must be a number in \(0, 1\); got 1.5"):
        compute_patient_exposure(real, generated, holdout=holdout, real_groups=groups, quantile=1.5)
