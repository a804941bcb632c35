"""Outlier slices: generated images whose basic properties no real slice has (fidelity)."""

from __future__ import annotations

import numpy as np

from ..errors import DegenerateInputError
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
from ._splits import split_halves

__all__ = ["compute_image_outliers", "STATISTICS"]

STATISTICS = {
    "outlier_share": "share of generated images with at least one property outside the real "
    "central range; higher is worse",
    "real_outlier_share": "the same share for real images, each judged by a range fitted on the "
    "other half of the real set, mean over splits; the baseline",
    "outlier_share_excess": "outlier_share - real_outlier_share; higher is worse",
}


def compute_image_outliers(
    real,
    generated,
    *,
    feature_names,
    real_groups=None,
    lower_percentile=0.5,
    upper_percentile=99.5,
    n_splits=10,
    n_evidence=16,
    seed=0,
) -> CheckResult:
    r"""Count generated images with a property outside the central range of the real images.

    For each property (column) :math:`k` the central range :math:`[q^{lo}_k, q^{hi}_k]` is the
    ``lower_percentile`` and ``upper_percentile`` of the real values (numpy's linear
    interpolation). An image is an outlier when any property falls outside its range:

    .. math:: \mathrm{outlier}(x) = \exists k : x_k < q^{lo}_k \ \text{or} \ x_k > q^{hi}_k.

    ``outlier_share`` is the share of generated outliers; higher is worse. Real images are not
    judged by a range fitted on themselves, which would flag about
    ``(100 - upper + lower)%`` per property by construction. Instead the real set is split in
    two halves (by patient when groups are given) ``n_splits`` times, a range is fitted on each
    half and the other half is judged by it. ``real_outlier_share`` is the mean share over
    both directions and all splits, the rate at which real slices of unseen patients fall
    outside a range fitted on others. The gate bounds ``outlier_share_excess``, the generated
    share minus that baseline.

    An outlier's severity is its largest distance outside a range, in units of that range's
    width; ``evidence.images`` lists the most severe generated outliers first.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_properties), float
        Per-image properties of the real images, for example those of the ``properties``
        extractor (mean intensity, body and lung fractions, Laplacian variance, entropy).
    generated : ndarray of shape (n_generated, n_properties), float
        The same properties of the generated images.
    feature_names : sequence of str of length n_properties
        Name of each property, used in the evidence table.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each real image; the halves are split by patient when given.
    lower_percentile, upper_percentile : float, default=0.5, 99.5
        Percentiles (0-100) of the real values that bound each central range.
    n_splits : int, default=10
        Number of random real halves for the baseline.
    n_evidence : int, default=16
        Number of generated outliers listed in ``evidence.images``, most severe first.
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the real halves.

    Returns
    -------
    CheckResult
        ``statistic="outlier_share"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``baseline`` is ``real_outlier_share``. Evidence: ``table`` with one row per property
        (range, share of generated images below and above it, real and generated medians),
        ``images`` (the most severe generated outliers) and ``distributions`` ``"generated"``
        and ``"real"`` (the severity of every outlier, cross-fitted for real images).

    Raises
    ------
    ValueError
        For malformed arrays, names or options.
    DegenerateInputError
        If the real set has fewer than 4 images (or 2 patients with groups) or the generated
        set is empty. Also if a property does not vary in the real set or one of its halves,
        so that its central range has zero width.

    Notes
    -----
    With few real images the percentiles sit near the minimum and maximum, so the range is
    narrow and about :math:`2 / (m + 1)` of new images fall outside a property's range fitted
    on :math:`m` images even when nothing is wrong. The baseline's ranges are fitted on half
    the real set, which makes it slightly larger than the share a full-size range would give:
    the comparison leans towards passing.
    """
    real = validate_features(real, "real").astype(np.float64, copy=False)
    generated = validate_features(generated, "generated").astype(np.float64, copy=False)
    validate_same_features(real, generated)
    names = validate_feature_names(feature_names, real.shape[1])
    groups = validate_groups(real_groups, real.shape[0])
    lower_percentile = validate_number(lower_percentile, "lower_percentile", low=0, high=50, low_inclusive=True)
    upper_percentile = validate_number(upper_percentile, "upper_percentile", low=50, high=100, high_inclusive=True)
    n_splits = validate_int(n_splits, "n_splits", minimum=1)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    seed = validate_seed(seed)
    require_min_images(real.shape[0], 4, "real", "two halves of at least 2 images")
    require_min_images(generated.shape[0], 1, "generated")
    if groups is not None:
        require_min_groups(groups, 2, "real_groups", "the halves are split by patient")
    percentiles = (lower_percentile, upper_percentile)

    low, high = _central_range(real, percentiles, names, "the real set")
    severity = _severity(generated, low, high)
    is_outlier = severity > 0

    rng = np.random.default_rng(seed)
    real_shares = np.empty(n_splits)
    real_severity = np.zeros(real.shape[0])
    for split in range(n_splits):
        first, second = split_halves(real.shape[0], groups, rng)
        flagged = 0
        for fit, judged in ((first, second), (second, first)):
            fit_low, fit_high = _central_range(real[fit], percentiles, names, "a real half")
            judged_severity = _severity(real[judged], fit_low, fit_high)
            flagged += np.count_nonzero(judged_severity > 0)
            real_severity[judged] = np.maximum(real_severity[judged], judged_severity)
        real_shares[split] = flagged / real.shape[0]

    statistics = {
        "outlier_share": float(is_outlier.mean()),
        "real_outlier_share": float(real_shares.mean()),
    }
    statistics["outlier_share_excess"] = statistics["outlier_share"] - statistics["real_outlier_share"]

    outliers = np.flatnonzero(is_outlier)
    worst = outliers[np.lexsort((outliers, -severity[outliers]))][:n_evidence]
    table = tuple(
        {
            "property": names[k],
            "real_low": float(low[k]),
            "real_high": float(high[k]),
            "share_below": float(np.mean(generated[:, k] < low[k])),
            "share_above": float(np.mean(generated[:, k] > high[k])),
            "median_real": float(np.median(real[:, k])),
            "median_generated": float(np.median(generated[:, k])),
        }
        for k in range(len(names))
    )
    split_kind = "by patient" if groups is not None else "by image"
    params = {
        "lower_percentile": lower_percentile,
        "upper_percentile": upper_percentile,
        "n_splits": n_splits,
        "n_evidence": n_evidence,
        "seed": seed,
        "grouped": groups is not None,
        "n_outliers": int(outliers.size),
    }
    return CheckResult(
        check="image_outliers",
        statistic="outlier_share",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=generated.shape[0],
        params=params,
        baseline=statistics["real_outlier_share"],
        baseline_kind=f"real images judged by ranges fitted on the other real half, split {split_kind}, "
        f"mean over {n_splits} splits",
        evidence=Evidence(
            table=table,
            images=tuple(int(index) for index in worst),
            distributions={"generated": severity[is_outlier], "real": real_severity[real_severity > 0]},
        ),
    )


def _central_range(values, percentiles, names, where):
    """Return the lower and upper percentile of every column; raise if a range has zero width."""
    low, high = np.percentile(values, percentiles, axis=0)
    flat = np.flatnonzero(high <= low)
    if flat.size:
        bad = [names[k] for k in flat]
        raise DegenerateInputError(
            f"properties must vary within {where}; got a central range of zero width for {bad}"
        )
    return low, high


def _severity(values, low, high):
    """Return each row's largest distance outside the ranges, in range widths (0 inside all)."""
    width = high - low
    below = (low - values) / width
    above = (values - high) / width
    return np.maximum(np.maximum(below, above).max(axis=1), 0.0)
