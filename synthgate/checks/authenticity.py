"""Authenticity (Alaa et al. 2022) of the generated set, compared with the holdout set's."""

from __future__ import annotations

import numpy as np

from ..result import CheckResult, Evidence, ImagePair
from ._holdout import Z_95, balanced_rows, nearest, validate_holdout
from ._validation import (
    require_min_groups,
    require_min_images,
    validate_features,
    validate_groups,
    validate_int,
    validate_seed,
    validate_same_features,
)

__all__ = ["compute_authenticity", "STATISTICS"]

STATISTICS = {
    "authenticity": "share of generated images farther from their nearest training image than that "
    "image is from its own nearest training neighbour; compare with holdout_authenticity",
    "holdout_authenticity": "the same share for holdout images, which were not used for training",
    "authenticity_gap": "holdout_authenticity - authenticity; about 0 without memorisation, higher is worse",
    "cohens_h": "Cohen's h of the gap, 2 asin(sqrt(holdout)) - 2 asin(sqrt(generated)); higher is worse",
    "cohens_h_ci_low": "lower end of the 95% interval of cohens_h; higher is worse",
    "cohens_h_ci_high": "upper end of the 95% interval of cohens_h",
    "gap_min": "smallest authenticity_gap over the repeats (spread from subsampling)",
    "gap_max": "largest authenticity_gap over the repeats (spread from subsampling)",
}


def compute_authenticity(real, generated, *, holdout=None, real_groups=None, n_repeats=10, n_evidence=12,
                         seed=0) -> CheckResult:
    r"""Compare the authenticity of generated images with that of unseen real images.

    Following Alaa et al. (2022), a sample :math:`x` is *unauthentic* when it is closer to its
    nearest training image :math:`t^*` than :math:`t^*` is to its own nearest training neighbour
    :math:`d_T(t^*)` (of another patient when ``real_groups`` is given):

    .. math:: A(x) = 1\left[\lVert x - t^* \rVert > d_T(t^*)\right].

    Authenticity is the mean of :math:`A` over a set. Unseen real images are not all authentic
    either, and their share depends on how densely the training set is sampled, so only the
    comparison with the holdout is meaningful. The generated set and the holdout are made equal
    in size by subsampling the larger (``n_repeats`` times, ``seed``), and the gap
    ``holdout_authenticity - authenticity`` is reported with Cohen's h,
    :math:`h = 2 \arcsin\sqrt{a_H} - 2 \arcsin\sqrt{a_G}`, whose standard error is
    :math:`\sqrt{2 / m}` for :math:`m` images per side. Higher is worse.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Features of the training images.
    generated : ndarray of shape (n_generated, n_features), float
        Features of the generated images, same features.
    holdout : ndarray of shape (n_holdout, n_features), float
        Features of real images NOT used for training. Required; the audit skips this check
        when the dataset has no holdout.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each training image. Strongly recommended for volumetric data: without
        it :math:`d_T` is the distance to a neighbouring slice of the same scan, so almost
        every sample counts as authentic.
    n_repeats : int, default=10
        Balanced subsamples, at least 1.
    n_evidence : int, default=12
        Unauthentic generated images listed as evidence, most copy-like first.
    seed : int, default=0
        Seed of the subsampling.

    Returns
    -------
    CheckResult
        ``statistic="authenticity_gap"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``interval`` is the 95% interval of the gap from the binomial standard errors of both
        shares, and ``baseline`` is 0. Evidence: ``pairs`` are unauthentic generated images with
        their nearest training image, score ``distance / neighbour distance`` (below 1 is
        unauthentic); ``distributions`` hold the finite ratios of generated and holdout images.

    Raises
    ------
    ValueError
        For malformed arrays or options, or a missing holdout.
    DegenerateInputError
        If the generated or holdout set is empty, or the training set has fewer than 2 images
        (2 patients with groups).

    Notes
    -----
    The definition follows the paper: each sample is compared with the neighbour distance of
    its own nearest training image. A training image with an exact duplicate has a neighbour
    distance of 0, so every sample near it is authentic.

    References
    ----------
    Alaa, A. M., van Breugel, B., Saveliev, E., & van der Schaar, M. (2022). How faithful is
    your synthetic data? Sample-level metrics for evaluating and auditing generative models.
    Proceedings of the 39th International Conference on Machine Learning (ICML), PMLR 162.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    holdout = validate_holdout(holdout, real)
    groups = validate_groups(real_groups, real.shape[0])
    n_repeats = validate_int(n_repeats, "n_repeats", minimum=1)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    seed = validate_seed(seed)
    require_min_images(generated.shape[0], 1, "generated")
    require_min_images(holdout.shape[0], 1, "holdout")
    require_min_images(real.shape[0], 2, "real", "each training image needs a neighbour")
    if groups is not None:
        require_min_groups(groups, 2, "real_groups", "each training image needs a neighbour of another patient")

    neighbour, _ = nearest(real, real, query_groups=groups, reference_groups=groups, exclude_self=groups is None)
    generated_ratio, generated_nearest = _ratio(generated, real, neighbour)
    holdout_ratio, _ = _ratio(holdout, real, neighbour)
    generated_authentic = generated_ratio > 1
    holdout_authentic = holdout_ratio > 1

    size = min(generated.shape[0], holdout.shape[0])
    rng = np.random.default_rng(seed)
    pairs_of_shares = []
    for _ in range(n_repeats):
        share_generated = generated_authentic[balanced_rows(generated.shape[0], size, rng)].mean()
        share_holdout = holdout_authentic[balanced_rows(holdout.shape[0], size, rng)].mean()
        pairs_of_shares.append((share_generated, share_holdout))
    shares = np.array(pairs_of_shares)
    authenticity, holdout_authenticity = shares.mean(axis=0)
    gaps = shares[:, 1] - shares[:, 0]
    gap = float(holdout_authenticity - authenticity)

    h = float(2 * np.arcsin(np.sqrt(holdout_authenticity)) - 2 * np.arcsin(np.sqrt(authenticity)))
    h_half_width = Z_95 * np.sqrt(2 / size)
    gap_se = np.sqrt(authenticity * (1 - authenticity) / size + holdout_authenticity * (1 - holdout_authenticity) / size)
    statistics = {
        "authenticity": float(authenticity),
        "holdout_authenticity": float(holdout_authenticity),
        "authenticity_gap": gap,
        "cohens_h": h,
        "cohens_h_ci_low": h - h_half_width,
        "cohens_h_ci_high": h + h_half_width,
        "gap_min": float(gaps.min()),
        "gap_max": float(gaps.max()),
    }

    unauthentic = np.flatnonzero(~generated_authentic)
    listed = unauthentic[np.argsort(generated_ratio[unauthentic], kind="stable")[:n_evidence]]
    pairs = tuple(ImagePair(int(g), int(generated_nearest[g]), float(generated_ratio[g]),
                            "distance / neighbour distance") for g in listed)
    distributions = {"generated": generated_ratio[np.isfinite(generated_ratio)],
                     "holdout": holdout_ratio[np.isfinite(holdout_ratio)]}
    params = {"n_repeats": n_repeats, "n_evidence": n_evidence, "seed": seed, "images_per_side": size,
              "grouped": groups is not None, "n_holdout": holdout.shape[0]}
    return CheckResult(
        check="authenticity",
        statistic="authenticity_gap",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=generated.shape[0],
        params=params,
        interval=(float(gap - Z_95 * gap_se), float(gap + Z_95 * gap_se)),
        interval_kind=f"95% binomial interval of the gap ({size} images per side)",
        baseline=0.0,
        baseline_kind="the gap of a generator as authentic as unseen real images",
        evidence=Evidence(pairs=pairs, distributions=distributions),
    )


def _ratio(query, real, neighbour):
    """Return ``|x - t*| / d_T(t*)`` (inf where d_T is 0) and ``t*`` for every query row."""
    distance, index = nearest(query, real)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(neighbour[index] > 0, distance / np.where(neighbour[index] > 0, neighbour[index], 1.0), np.inf)
    return ratio, index
