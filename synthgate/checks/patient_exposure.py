"""Patient exposure: which training patients do generated images sit unusually close to?"""

from __future__ import annotations

import numpy as np
from scipy.stats import betabinom

from ..result import CheckResult, Evidence, ImagePair
from ._holdout import nearest, nearest_per_group, validate_holdout
from ._validation import (
    require_min_images,
    validate_features,
    validate_groups,
    validate_int,
    validate_number,
    validate_same_features,
)

__all__ = ["compute_patient_exposure", "STATISTICS"]

STATISTICS = {
    "exposed_patients": "training patients with significantly more close generated images than "
    "chance (Holm-adjusted p < alpha) and an excess share above min_excess; must be 0",
    "max_exposure_excess": "largest share of generated images close to one patient minus the "
    "share expected by chance; higher is worse",
    "max_exposure_share": "largest share of generated images close to one patient",
    "expected_share": "share of generated images expected below each patient's threshold by chance",
    "min_adjusted_p": "smallest Holm-adjusted p-value over the patients; lower is worse",
    "exposure_distance_threshold": "closeness threshold of the most exposed patient (its rank-k "
    "holdout distance)",
    "patients": "training patients examined",
}


def compute_patient_exposure(real, generated, *, holdout=None, real_groups=None, quantile=0.05, alpha=0.05,
                             min_excess=0.05, n_evidence=12) -> CheckResult:
    r"""Count, per training patient, the generated images closer to that patient than unseen images are.

    For a training patient :math:`P` with slices :math:`S_P`, let :math:`d(x, P)` be the
    distance from an image to the nearest slice of :math:`P`. Each holdout image gives one such
    distance; the patient's threshold :math:`\tau_P` is the :math:`k`-th smallest, with
    :math:`k = \max(1, \lfloor q (n_H + 1) \rfloor)` for ``quantile`` :math:`q`. The exposure
    count :math:`c_P` is the number of generated images whose nearest training patient is
    :math:`P` and with :math:`d(g, P) < \tau_P` (each image counts for one patient, so copies
    of one patient do not also expose a similar-looking one). If the generated images were
    exchangeable with the holdout images (a generator that did not memorise :math:`P`), each
    would fall below the :math:`k`-th of the :math:`n_H` holdout distances with probability
    :math:`\pi_0 = k / (n_H + 1)`, and since :math:`\tau_P` is itself random, the number that
    does follows the beta-binomial distribution :math:`\mathrm{BetaBin}(n_G, k, n_H + 1 - k)`;
    :math:`c_P` counts a subset of them, so the upper tail gives a conservative p-value per patient.
    The p-values are adjusted for the number of patients by Holm's method. A patient is exposed
    when the adjusted p-value is below ``alpha`` *and* the excess share
    :math:`c_P / n_G - \pi_0` is above ``min_excess``, so that a tiny excess in a large set does
    not count. Every exposure statistic is higher-is-worse.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Features of the training images.
    generated : ndarray of shape (n_generated, n_features), float
        Features of the generated images, same features.
    holdout : ndarray of shape (n_holdout, n_features), float
        Features of real images NOT used for training. Required; the audit skips this check
        when the dataset has no holdout.
    real_groups : sequence of str or int of shape (n_real,)
        Patient id of each training image. Required; the audit skips this check without groups.
    quantile : float, default=0.05
        Share of holdout images that defines "close", in (0, 1).
    alpha : float, default=0.05
        Family-wise significance level over the patients, in (0, 1).
    min_excess : float, default=0.05
        Smallest excess share that counts as exposure, in [0, 1).
    n_evidence : int, default=12
        Generated images closest to the most exposed patient listed as evidence.

    Returns
    -------
    CheckResult
        ``statistic="exposed_patients"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``baseline`` is 0. Evidence: ``table`` lists the patients, most exposed first, with
        their counts, shares and adjusted p-values; ``pairs`` are the generated images closest
        to the most exposed patient; ``distributions`` hold the distances of generated and
        holdout images to that patient.

    Raises
    ------
    ValueError
        For malformed arrays or options, a missing holdout or missing groups.
    DegenerateInputError
        If a set is empty.

    Notes
    -----
    The beta-binomial null treats generated images as independent given the threshold; a
    mode-collapsed set is not, so its p-values are too small, which the ``min_excess`` margin
    guards against. A generated set whose anatomy mix differs from the holdout's (for example
    more slices of one body region) also shifts the counts without any memorisation; read an
    exposure together with the distance plot.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
    Journal of Statistics, 6(2), 65-70.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    holdout = validate_holdout(holdout, real)
    if real_groups is None:
        raise ValueError(
            "real_groups must give the patient of each training image; got None. In an audit, add "
            "groups = \"folder\" (or a CSV file,patient_id) to the dataset table or pass --groups"
        )
    codes = validate_groups(real_groups, real.shape[0])
    quantile = validate_number(quantile, "quantile", low=0.0, high=1.0)
    alpha = validate_number(alpha, "alpha", low=0.0, high=1.0)
    min_excess = validate_number(min_excess, "min_excess", low=0.0, high=1.0, low_inclusive=True)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    for rows, name in ((real, "real"), (generated, "generated"), (holdout, "holdout")):
        require_min_images(rows.shape[0], 1, name)

    names = np.unique(np.asarray(real_groups))
    n_generated, n_holdout = generated.shape[0], holdout.shape[0]
    to_patient_generated = nearest_per_group(generated, real, codes)
    to_patient_holdout = nearest_per_group(holdout, real, codes)

    k = max(1, int(np.floor(quantile * (n_holdout + 1))))
    expected = k / (n_holdout + 1)
    thresholds = np.sort(to_patient_holdout, axis=0)[k - 1]
    # Each generated image counts for its nearest training patient only, so that copies of one
    # patient do not also count for a similar-looking second patient.
    nearest_patient = to_patient_generated.argmin(axis=1)
    close = to_patient_generated[np.arange(n_generated), nearest_patient] < thresholds[nearest_patient]
    counts = np.bincount(nearest_patient[close], minlength=names.size)
    shares = counts / n_generated
    excess = shares - expected
    p_values = betabinom.sf(counts - 1, n_generated, k, n_holdout + 1 - k)
    adjusted = _holm(p_values)
    exposed = (adjusted < alpha) & (excess > min_excess)

    order = np.lexsort((adjusted, -excess))
    worst = int(order[0])
    statistics = {
        "exposed_patients": float(exposed.sum()),
        "max_exposure_excess": float(excess.max()),
        "max_exposure_share": float(shares.max()),
        "expected_share": float(expected),
        "min_adjusted_p": float(adjusted.min()),
        "exposure_distance_threshold": float(thresholds[worst]),
        "patients": float(names.size),
    }
    slice_counts = np.bincount(codes, minlength=names.size)
    table = tuple(
        {"patient": str(names[p]), "slices": int(slice_counts[p]), "close_generated": int(counts[p]),
         "share": round(float(shares[p]), 4), "expected": round(expected, 4), "excess": round(float(excess[p]), 4),
         "adjusted_p": float(f"{adjusted[p]:.3g}"), "exposed": bool(exposed[p])}
        for p in order
    )

    patient_rows = np.flatnonzero(codes == worst)
    closest = np.argsort(to_patient_generated[:, worst], kind="stable")[:n_evidence]
    _, within = nearest(generated[closest], real[patient_rows])
    pairs = tuple(ImagePair(int(g), int(patient_rows[j]), float(to_patient_generated[g, worst]),
                            f"distance to patient {names[worst]}") for g, j in zip(closest, within))
    distributions = {f"generated -> {names[worst]}": to_patient_generated[:, worst],
                     f"holdout -> {names[worst]}": to_patient_holdout[:, worst]}
    params = {"quantile": quantile, "rank_k": k, "alpha": alpha, "min_excess": min_excess,
              "n_evidence": n_evidence, "n_holdout": n_holdout}
    return CheckResult(
        check="patient_exposure",
        statistic="exposed_patients",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=n_generated,
        params=params,
        baseline=0.0,
        baseline_kind="no exposed patient",
        evidence=Evidence(pairs=pairs, table=table, distributions=distributions),
    )


def _holm(p_values):
    """Return Holm-adjusted p-values (step-down, monotone, capped at 1)."""
    n = p_values.size
    order = np.argsort(p_values, kind="stable")
    stepped = np.minimum(1.0, (n - np.arange(n)) * p_values[order])
    adjusted = np.empty(n)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted
