"""Spectral fingerprints: do generated slices have the power spectrum of real ones (fidelity)?"""

from __future__ import annotations

import numpy as np

from ..features.spectrum import frequencies_from_names
from ..result import CheckResult, Evidence
from ._validation import (
    require_min_groups,
    require_min_images,
    validate_feature_names,
    validate_features,
    validate_groups,
    validate_int,
    validate_number,
    validate_same_features,
    validate_seed,
)
from .separability_auc import compute_separability_auc
from ._splits import split_halves

__all__ = ["compute_spectral_gap", "STATISTICS"]

STATISTICS = {
    "auc": "cross-validated AUC of a logistic regression telling generated from real log power "
    "spectra (the separability_auc protocol); 0.5 is indistinguishable, higher is worse",
    "auc_chance_upper": "upper edge of the 95% chance band of one repeat's AUC",
    "high_band_max_gap": "largest |mean log10 power generated - mean log10 power real| over the "
    "high-frequency band; higher is worse",
    "real_high_band_max_gap": "the same between two halves of the real set, mean over splits; the baseline",
    "high_band_gap_excess": "high_band_max_gap - real_high_band_max_gap; higher is worse",
    "peak_gap_frequency": "frequency (cycles per pixel) of the largest gap in the high-frequency band",
}


def compute_spectral_gap(
    real,
    generated,
    *,
    feature_names,
    real_groups=None,
    high_band_start=0.25,
    n_splits=20,
    n_repeats=5,
    n_folds=5,
    max_per_class=1000,
    n_evidence=12,
    seed=0,
) -> CheckResult:
    r"""Compare the 1-D power spectra of generated and real slices.

    The inputs are the log10 power spectra of the ``spectrum`` extractor, one column per
    frequency ring. Two statistics are computed, higher is worse for both:

    * ``auc``: how well a linear classifier separates generated from real spectra, computed
      by :func:`~synthgate.checks.separability_auc.compute_separability_auc` on the spectra
      (balanced, repeated, seeded, patient-grouped folds).
    * ``high_band_max_gap``: with :math:`\bar g_f` and :math:`\bar r_f` the mean log10 power
      of generated and real slices at frequency :math:`f`,

      .. math:: \max_{f \ge f_0} |\bar g_f - \bar r_f|,

      where :math:`f_0` is ``high_band_start``. A gap of 0.3 means a factor of 2 in power.
      Up-sampling by transposed convolutions or interpolation shows up here as missing power
      or as peaks at fractions of the sampling frequency.

    The baseline of the gap is the same maximum between two random halves of the real set
    (split by patient when groups are given), averaged over ``n_splits`` splits, and
    ``high_band_gap_excess`` is the gap minus that baseline.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_frequencies), float
        Log10 power spectra of the real slices.
    generated : ndarray of shape (n_generated, n_frequencies), float
        Log10 power spectra of the generated slices, same frequencies.
    feature_names : sequence of str of length n_frequencies
        Column names ``log_power_f<frequency>`` (frequency in cycles per pixel), as the
        ``spectrum`` extractor writes them.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each real image. The classifier folds and the real halves keep each
        patient on one side.
    high_band_start : float, default=0.25
        Lowest frequency of the high-frequency band, in cycles per pixel (0.5 is the Nyquist
        frequency along an axis).
    n_splits : int, default=20
        Number of random real halves for the baseline.
    n_repeats, n_folds, max_per_class : int, default=5, 5, 1000
        ``n_repeats``, ``n_splits`` and ``max_per_class`` of the separability protocol.
    n_evidence : int, default=12
        Number of generated images listed in ``evidence.images`` (highest classifier score).
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the classifier and the real halves.

    Returns
    -------
    CheckResult
        ``statistic="high_band_max_gap"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``baseline`` is ``real_high_band_max_gap``. Evidence: ``table`` with one row per
        frequency (``frequency``, ``mean_real``, ``mean_generated``, ``difference``,
        ``high_band``) for the spectrum plot, and ``images``, the generated slices that the
        classifier scores as most clearly generated.

    Raises
    ------
    ValueError
        For malformed arrays, names or options, including a ``high_band_start`` above the
        highest frequency.
    DegenerateInputError
        If a set has too few images for the classifier folds (``2 * n_folds``), the real set
        has fewer than 4 images or 2 patients (with groups), or every frequency is constant.

    Notes
    -----
    The spectra of one patient's neighbouring slices are alike, so the classifier groups real
    slices by patient, and the real halves are split by patient. The halves have half the
    images, so their gap is larger than the sampling noise of a full-size comparison: for
    data without patient structure the baseline is lenient by a factor of about
    :math:`\sqrt{2}`.

    References
    ----------
    Durall, R., Keuper, M., & Keuper, J. (2020). Watch your up-convolution: CNN based generative
    deep neural networks are failing to reproduce spectral distributions. CVPR, 7890-7899.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    names = validate_feature_names(feature_names, real.shape[1])
    frequencies = frequencies_from_names(names)
    groups = validate_groups(real_groups, real.shape[0])
    high_band_start = validate_number(high_band_start, "high_band_start", low=0.0, high=float(frequencies.max()), high_inclusive=True)
    n_splits = validate_int(n_splits, "n_splits", minimum=1)
    seed = validate_seed(seed)
    require_min_images(real.shape[0], 4, "real", "two halves of at least 2 images")
    if groups is not None:
        require_min_groups(groups, 2, "real_groups", "the halves are split by patient")
    band = frequencies >= high_band_start

    separability = compute_separability_auc(
        real, generated, real_groups=real_groups, n_repeats=n_repeats, n_splits=n_folds,
        max_per_class=max_per_class, n_evidence=n_evidence, seed=seed,
    )

    real = real.astype(np.float64, copy=False)
    generated = generated.astype(np.float64, copy=False)
    mean_real = real.mean(axis=0)
    mean_generated = generated.mean(axis=0)
    difference = mean_generated - mean_real
    band_gap = np.abs(difference[band])
    peak = int(np.argmax(band_gap))

    rng = np.random.default_rng(seed)
    split_gaps = np.empty(n_splits)
    for split in range(n_splits):
        first, second = split_halves(real.shape[0], groups, rng)
        split_difference = real[second].mean(axis=0) - real[first].mean(axis=0)
        split_gaps[split] = np.abs(split_difference[band]).max()

    statistics = {
        "auc": separability.statistics["auc"],
        "auc_chance_upper": separability.statistics["chance_upper"],
        "high_band_max_gap": float(band_gap[peak]),
        "real_high_band_max_gap": float(split_gaps.mean()),
        "peak_gap_frequency": float(frequencies[band][peak]),
    }
    statistics["high_band_gap_excess"] = statistics["high_band_max_gap"] - statistics["real_high_band_max_gap"]

    table = tuple(
        {
            "frequency": float(frequency),
            "mean_real": float(r),
            "mean_generated": float(g),
            "difference": float(d),
            "high_band": bool(in_band),
        }
        for frequency, r, g, d, in_band in zip(frequencies, mean_real, mean_generated, difference, band)
    )
    split_kind = "by patient" if groups is not None else "by image"
    params = {
        "high_band_start": high_band_start,
        "n_high_band_frequencies": int(band.sum()),
        "n_splits": n_splits,
        "seed": seed,
        "grouped": groups is not None,
        **{f"classifier_{key}": value for key, value in separability.params.items() if key != "seed"},
    }
    return CheckResult(
        check="spectral_gap",
        statistic="high_band_max_gap",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=generated.shape[0],
        params=params,
        baseline=statistics["real_high_band_max_gap"],
        baseline_kind=f"largest high-band gap between random real halves split {split_kind}, mean over {n_splits} splits",
        evidence=Evidence(table=table, images=separability.evidence.images),
    )
