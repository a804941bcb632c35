"""compute_spectral_gap on synthetic spectra: the high-band gap, its baseline and the shared AUC."""

import numpy as np
import pytest

from synthgate.checks.separability_auc import compute_separability_auc
from synthgate.checks.spectral_gap import STATISTICS, compute_spectral_gap
from synthgate.checks._splits import split_halves
from synthgate.errors import DegenerateInputError

N_RINGS = 40
NAMES = tuple(f"log_power_f{ring / 64:.4f}" for ring in range(1, N_RINGS + 1))
FREQUENCIES = np.arange(1, N_RINGS + 1) / 64


def _spectra(n, seed, bump=0.0):
    """Falling log spectra with per-image noise; ``bump`` is added at 0.5 cycles per pixel."""
    rng = np.random.default_rng(seed)
    spectra = 6 - 8 * FREQUENCIES + rng.normal(0, 0.1, (n, N_RINGS)) + rng.normal(0, 0.2, (n, 1))
    spectra[:, FREQUENCIES == 0.5] += bump
    return spectra


@pytest.fixture
def real():
    return _spectra(60, seed=0)


@pytest.fixture
def groups():
    return np.repeat(np.arange(12), 5)


def test_gap_matches_mean_difference(real, groups):
    generated = _spectra(50, seed=1, bump=1.0)
    result = compute_spectral_gap(real, generated, feature_names=NAMES, real_groups=groups, n_repeats=2)
    difference = generated.mean(axis=0) - real.mean(axis=0)
    band = FREQUENCIES >= 0.25
    assert result.statistics["high_band_max_gap"] == pytest.approx(np.abs(difference[band]).max())
    assert result.statistics["peak_gap_frequency"] == 0.5
    assert result.statistics["high_band_gap_excess"] > 0.7
    assert result.statistics["auc"] > 0.95


def test_baseline_by_hand(real, groups):
    generated = _spectra(50, seed=1)
    result = compute_spectral_gap(real, generated, feature_names=NAMES, real_groups=groups, n_splits=3, seed=4, n_repeats=1)
    rng = np.random.default_rng(4)
    band = FREQUENCIES >= 0.25
    gaps = []
    for _ in range(3):
        first, second = split_halves(len(real), groups, rng)
        gaps.append(np.abs(real[second].mean(axis=0) - real[first].mean(axis=0))[band].max())
    assert result.statistics["real_high_band_max_gap"] == pytest.approx(np.mean(gaps))
    assert result.baseline == result.statistics["real_high_band_max_gap"]


def test_auc_is_the_separability_protocol(real, groups):
    generated = _spectra(50, seed=1, bump=0.3)
    result = compute_spectral_gap(real, generated, feature_names=NAMES, real_groups=groups, n_repeats=2, n_folds=4, seed=3)
    expected = compute_separability_auc(real, generated, real_groups=groups, n_repeats=2, n_splits=4, seed=3)
    assert result.statistics["auc"] == expected.statistics["auc"]
    assert result.statistics["auc_chance_upper"] == expected.statistics["chance_upper"]
    assert result.evidence.images == expected.evidence.images


def test_same_distribution_has_small_excess(real, groups):
    generated = _spectra(60, seed=7)
    result = compute_spectral_gap(real, generated, feature_names=NAMES, real_groups=groups, n_repeats=2)
    assert result.statistics["high_band_gap_excess"] < 0.1
    assert result.statistics["auc"] < 0.75


def test_band_start_limits_the_gap(real, groups):
    generated = _spectra(50, seed=1, bump=1.0)
    result = compute_spectral_gap(
        real, generated, feature_names=NAMES, real_groups=groups, high_band_start=0.55, n_repeats=1
    )
    assert result.statistics["high_band_max_gap"] < 0.3
    assert result.params["n_high_band_frequencies"] == int(np.sum(FREQUENCIES >= 0.55))


def test_table_and_fields(real, groups):
    generated = _spectra(50, seed=1)
    result = compute_spectral_gap(real, generated, feature_names=NAMES, real_groups=groups, n_repeats=1)
    assert set(result.statistics) == set(STATISTICS)
    assert result.statistic == "high_band_max_gap"
    assert len(result.evidence.table) == N_RINGS
    assert result.evidence.table[0]["frequency"] == pytest.approx(1 / 64, abs=5e-5)
    assert [row["high_band"] for row in result.evidence.table] == list(FREQUENCIES >= 0.25)
    assert result.params["classifier_per_class"] == 50


def test_seed_determinism(real, groups):
    generated = _spectra(50, seed=1, bump=0.2)
    first = compute_spectral_gap(real, generated, feature_names=NAMES, real_groups=groups, n_repeats=2, seed=5)
    second = compute_spectral_gap(real, generated, feature_names=NAMES, real_groups=groups, n_repeats=2, seed=5)
    assert dict(first.statistics) == dict(second.statistics)


def test_rejects_bad_options(real):
    generated = _spectra(20, seed=1)
    with pytest.raises(ValueError, match="feature_names must be spectrum names like 'log_power_f0.2500'; got 'x'"):
        compute_spectral_gap(real, generated, feature_names=("x",) + NAMES[1:])
    with pytest.raises(ValueError, match=r"high_band_start must be a number in \(0, 0.625\]; got 0.9"):
        compute_spectral_gap(real, generated, feature_names=NAMES, high_band_start=0.9)
    with pytest.raises(ValueError, match="n_splits must be an integer >= 1; got 0"):
        compute_spectral_gap(real, generated, feature_names=NAMES, n_splits=0)


def test_too_few_images_is_degenerate(real):
    with pytest.raises(DegenerateInputError, match="generated must contain at least 10 images"):
        compute_spectral_gap(real, _spectra(5, seed=1), feature_names=NAMES)
