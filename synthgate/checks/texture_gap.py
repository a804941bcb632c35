"""Per-feature standardised mean differences of texture features (fidelity)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import DegenerateInputError
from ..result import CheckResult, Evidence
from ._splits import split_halves
from ._validation import (
    require_min_groups,
    require_min_images,
    validate_feature_names,
    validate_features,
    validate_groups,
    validate_int,
    validate_same_features,
    validate_seed,
)

__all__ = ["compute_texture_gap", "STATISTICS"]

logger = logging.getLogger(__name__)

STATISTICS = {
    "median_abs_smd": "median over features of |standardised mean difference| generated vs real; "
    "higher is worse",
    "real_median_abs_smd": "the same median between two random halves of the real set, mean over "
    "splits; the baseline",
    "median_abs_smd_excess": "median_abs_smd - real_median_abs_smd; higher is worse",
    "max_abs_smd": "largest |standardised mean difference| over features; higher is worse",
    "share_features_beyond_real": "share of features whose |SMD| exceeds the largest |SMD| seen "
    "between real halves; higher is worse",
}


def compute_texture_gap(
    real,
    generated,
    *,
    feature_names,
    real_groups=None,
    n_splits=20,
    n_worst=10,
    seed=0,
) -> CheckResult:
    r"""Compare the mean of every texture feature between generated and real images.

    For feature :math:`k` the standardised mean difference (Cohen's d with pooled SD) is

    .. math::

        \mathrm{SMD}_k = \frac{\bar g_k - \bar r_k}{s_k}, \qquad
        s_k^2 = \frac{(n_r - 1) s_{r,k}^2 + (n_g - 1) s_{g,k}^2}{n_r + n_g - 2},

    so features of different scales (grey-level statistics, GLCM properties, LBP bins) are
    comparable. The headline is the median of :math:`|\mathrm{SMD}_k|` over features:
    higher is worse.

    The baseline is the same statistic between two random halves of the real set, split by
    patient when groups are given and by image otherwise, repeated ``n_splits`` times. A
    patient split shuffles the patients and cuts where the first half comes closest to
    half of the images.
    A feature counts as "beyond real" when its :math:`|\mathrm{SMD}|` exceeds the largest
    :math:`|\mathrm{SMD}|` that feature shows across the real splits.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Texture features of the real images (first-order statistics, GLCM properties, LBP
        histogram values, any scale).
    generated : ndarray of shape (n_generated, n_features), float
        The same features of the generated images.
    feature_names : sequence of str of length n_features
        Unique name of each column, used in the evidence table and in error messages.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each real image. With groups the real halves never share a patient,
        so the baseline includes the variation between patients that an unseen patient
        (or a faithful generator) shows. Without groups the halves share patients and the
        baseline is close to pure sampling noise.
    n_splits : int, default=20
        Number of random real halves.
    n_worst : int, default=10
        Number of features with the largest :math:`|\mathrm{SMD}|` in the evidence table.
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the real splits.

    Returns
    -------
    CheckResult
        ``statistic="median_abs_smd"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``baseline`` is ``real_median_abs_smd`` and ``interval`` is None. Evidence:
        ``table`` with columns ``feature``, ``smd``, ``real_split_max_abs_smd``,
        ``mean_real``, ``mean_generated`` (worst first) and ``distributions`` ``"generated"``
        (:math:`|\mathrm{SMD}_k|` per feature) and ``"real"`` (:math:`|\mathrm{SMD}|` of
        every feature in every real split).

    Raises
    ------
    ValueError
        For malformed arrays, names or options.
    DegenerateInputError
        If the real set has fewer than 4 images (or 2 patients with groups) or the generated
        set fewer than 2. Also if a feature is constant in both sets at different values
        (infinite SMD), if every feature is constant in both sets, or if a real split puts
        two different constant values in its halves.

    Notes
    -----
    A feature constant in both sets at the same value carries no information: it is dropped
    with a logged warning and listed in ``params["dropped_features"]``. A feature constant
    only in the real set has a real-split SMD of 0 (both halves equal).

    The halves are about half the size of the real set, so their SMDs vary more than the
    generated-vs-real SMD of a generator that matches the real distribution. For data
    without patient structure this makes the baseline lenient by a factor of about
    :math:`\sqrt{2}` in SMD. SMD has no small-sample (Hedges) correction.

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences (2nd ed.).
    Lawrence Erlbaum Associates.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    names = validate_feature_names(feature_names, real.shape[1])
    groups = validate_groups(real_groups, real.shape[0])
    n_splits = validate_int(n_splits, "n_splits", minimum=1)
    n_worst = validate_int(n_worst, "n_worst", minimum=0)
    seed = validate_seed(seed)
    require_min_images(real.shape[0], 4, "real", "two halves of at least 2 images")
    require_min_images(generated.shape[0], 2, "generated", "a standard deviation is needed")
    if groups is not None:
        require_min_groups(groups, 2, "real_groups", "the halves are split by patient")

    real = real.astype(np.float64, copy=False)
    generated = generated.astype(np.float64, copy=False)
    real, generated, names, dropped = _drop_constant_features(real, generated, names)

    smd = _smd(real, generated, names, "generated vs real")
    abs_smd = np.abs(smd)

    rng = np.random.default_rng(seed)
    split_abs_smd = np.empty((n_splits, len(names)))
    for split in range(n_splits):
        first, second = split_halves(real.shape[0], groups, rng)
        split_abs_smd[split] = np.abs(_smd(real[first], real[second], names, "between real halves"))
    real_split_max = split_abs_smd.max(axis=0)

    statistics = {
        "median_abs_smd": float(np.median(abs_smd)),
        "real_median_abs_smd": float(np.median(split_abs_smd, axis=1).mean()),
        "max_abs_smd": float(abs_smd.max()),
        "share_features_beyond_real": float(np.mean(abs_smd > real_split_max)),
    }
    statistics["median_abs_smd_excess"] = statistics["median_abs_smd"] - statistics["real_median_abs_smd"]

    mean_real = real.mean(axis=0)
    mean_generated = generated.mean(axis=0)
    worst = np.lexsort((np.arange(len(names)), -abs_smd))[:n_worst]
    table = tuple(
        {
            "feature": names[k],
            "smd": float(smd[k]),
            "real_split_max_abs_smd": float(real_split_max[k]),
            "mean_real": float(mean_real[k]),
            "mean_generated": float(mean_generated[k]),
        }
        for k in worst
    )
    split_kind = "by patient" if groups is not None else "by image"
    params = {
        "n_splits": n_splits,
        "n_worst": n_worst,
        "seed": seed,
        "grouped": groups is not None,
        "n_real_patients": int(np.unique(groups).size) if groups is not None else None,
        "n_features": len(names),
        "dropped_features": dropped,
    }
    return CheckResult(
        check="texture_gap",
        statistic="median_abs_smd",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=generated.shape[0],
        params=params,
        baseline=statistics["real_median_abs_smd"],
        baseline_kind=f"median |SMD| between random real halves split {split_kind}, mean over {n_splits} splits",
        evidence=Evidence(
            distributions={"generated": abs_smd, "real": split_abs_smd.ravel()},
            table=table,
        ),
    )


def _drop_constant_features(real, generated, names):
    """Drop features constant in both sets at one value; raise if the two constants differ."""
    real_constant = np.ptp(real, axis=0) == 0
    generated_constant = np.ptp(generated, axis=0) == 0
    both = real_constant & generated_constant
    differing = both & (real[0] != generated[0])
    if differing.any():
        bad = [names[k] for k in np.flatnonzero(differing)]
        raise DegenerateInputError(
            f"features must vary in at least one set; got features constant in both sets at "
            f"different values (infinite SMD): {bad}"
        )
    if both.all():
        raise DegenerateInputError("features must vary in at least one set; got every feature constant")

    dropped = tuple(names[k] for k in np.flatnonzero(both))
    if dropped:
        logger.warning("dropped %d features constant in both sets: %s", len(dropped), list(dropped))
    keep = ~both
    kept_names = tuple(name for name, kept in zip(names, keep) if kept)
    return real[:, keep], generated[:, keep], kept_names, dropped


def _smd(a, b, names, comparison):
    """Return (mean(b) - mean(a)) / pooled SD per column; 0 where both columns are equal constants."""
    n_a, n_b = a.shape[0], b.shape[0]
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    squares = ((a - mean_a) ** 2).sum(axis=0) + ((b - mean_b) ** 2).sum(axis=0)
    pooled_sd = np.sqrt(squares / (n_a + n_b - 2))
    difference = mean_b - mean_a

    zero_sd = pooled_sd == 0
    infinite = zero_sd & (difference != 0)
    if infinite.any():
        bad = [names[k] for k in np.flatnonzero(infinite)]
        raise DegenerateInputError(
            f"features must have a non-zero pooled standard deviation {comparison}; got two different "
            f"constant values (infinite SMD) for {bad}"
        )
    smd = np.zeros_like(difference)
    np.divide(difference, pooled_sd, out=smd, where=~zero_sd)
    return smd

