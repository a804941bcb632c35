"""membership_inference: the attack's AUC, low-FPR TPR and ImageCLEF metrics on synthetic features."""

import numpy as np
import pytest

from synthgate.checks.membership_inference import STATISTICS, compute_membership_inference
from synthgate.errors import DegenerateInputError, SynthgateWarning


def _sets(n_real=120, n_holdout=120, n_generated=200, memorised=False, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, 16))
    holdout = rng.normal(size=(n_holdout, 16))
    if memorised:
        generated = real[rng.integers(0, n_real, n_generated)] + rng.normal(scale=0.05, size=(n_generated, 16))
    else:
        generated = rng.normal(size=(n_generated, 16))
    return real, generated, holdout


def test_unseen_generator_is_near_chance():
    real, generated, holdout = _sets()
    result = compute_membership_inference(real, generated, holdout=holdout)
    assert 0.4 < result.statistics["auc"] < 0.6
    assert result.statistics["auc_ci_low"] < 0.556
    assert result.statistics["tpr_at_low_fpr"] < 0.1


def test_memorising_generator_is_attacked():
    real, generated, holdout = _sets(memorised=True, n_generated=400)
    result = compute_membership_inference(real, generated, holdout=holdout)
    assert result.statistics["auc"] > 0.9
    assert result.statistics["auc_ci_low"] > 0.8
    assert result.statistics["tpr_at_low_fpr"] > 0.5
    assert result.statistics["kappa"] > 0.6


def test_statistics_match_declaration():
    real, generated, holdout = _sets()
    result = compute_membership_inference(real, generated, holdout=holdout)
    assert set(result.statistics) == set(STATISTICS)
    assert result.interval == (result.statistics["auc_ci_low"], result.statistics["auc_ci_high"])


def test_perfect_separation_gives_exact_metrics():
    real = np.arange(10, dtype=float)[:, None]
    holdout = real + 100.0
    result = compute_membership_inference(real, real.copy(), holdout=holdout)
    assert result.statistics["auc"] == 1.0
    assert result.statistics["accuracy"] == 1.0
    assert result.statistics["f1"] == 1.0
    assert result.statistics["kappa"] == 1.0
    assert result.statistics["tpr_at_low_fpr"] == 1.0


def test_unequal_sides_are_subsampled_with_spread():
    real, generated, holdout = _sets(n_real=300, n_holdout=60)
    result = compute_membership_inference(real, generated, holdout=holdout, n_repeats=8)
    assert result.params["images_per_side"] == 60
    assert result.statistics["auc_min"] < result.statistics["auc_max"]
    assert len(result.evidence.table) == 8


def test_same_seed_gives_identical_numbers():
    real, generated, holdout = _sets(n_real=200, n_holdout=80)
    first = compute_membership_inference(real, generated, holdout=holdout, seed=3)
    second = compute_membership_inference(real, generated, holdout=holdout, seed=3)
    assert dict(first.statistics) == dict(second.statistics)


def test_calibrated_attack_uses_groups():
    real, generated, holdout = _sets(memorised=True)
    groups = [f"p{i // 10}" for i in range(len(real))]
    holdout_groups = [f"h{i // 10}" for i in range(len(holdout))]
    result = compute_membership_inference(
        real, generated, holdout=holdout, attack="calibrated", real_groups=groups, holdout_groups=holdout_groups
    )
    assert result.statistics["auc"] > 0.8
    assert result.params["calibration_grouped"] is True


def test_roc_curve_is_monotone_evidence():
    real, generated, holdout = _sets(memorised=True)
    result = compute_membership_inference(real, generated, holdout=holdout)
    tpr = result.evidence.distributions["roc_tpr"]
    assert tpr[0] >= 0
    assert tpr[-1] == 1.0
    assert np.all(np.diff(tpr) >= 0)
    assert result.evidence.pairs[0].score_name == "distance to nearest generated"


def test_holdout_closer_than_training_warns():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(40, 8))
    holdout = rng.normal(size=(40, 8))
    generated = holdout + rng.normal(scale=0.01, size=holdout.shape)
    with pytest.warns(SynthgateWarning, match="holdout images are nearer to the generated set"):
        compute_membership_inference(real, generated, holdout=holdout)


def test_missing_holdout_names_the_fix():
    real, generated, _ = _sets()
    with pytest.raises(ValueError, match=r"holdout must be .*got None.*--holdout DIR"):
        compute_membership_inference(real, generated)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"attack": "shadow"}, r"attack must be one of 'distance', 'calibrated'; got 'shadow'"),
        ({"max_fpr": 0.7}, r"max_fpr must be a number in \(0, 0.5\); got 0.7"),
        ({"n_repeats": 0}, r"n_repeats must be an integer >= 1; got 0"),
        ({"seed": -1}, r"seed must be a non-negative integer; got -1"),
    ],
)
def test_invalid_options_are_rejected(options, match):
    real, generated, holdout = _sets()
    with pytest.raises(ValueError, match=match):
        compute_membership_inference(real, generated, holdout=holdout, **options)


def test_single_holdout_image_is_degenerate():
    real, generated, holdout = _sets()
    with pytest.raises(DegenerateInputError, match=r"holdout must contain at least 2 images"):
        compute_membership_inference(real, generated, holdout=holdout[:1])
