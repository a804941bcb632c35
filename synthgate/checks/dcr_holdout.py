"""Distance to closest record against a holdout: do generated images prefer the training set?"""

from __future__ import annotations

import numpy as np

from ..result import CheckResult, Evidence, ImagePair
from . import _neighbors
from ._holdout import balanced_rows, validate_holdout, wilson_interval
from ._validation import (
    require_min_images,
    validate_features,
    validate_int,
    validate_seed,
    validate_same_features,
)

__all__ = ["compute_dcr_holdout", "STATISTICS"]

STATISTICS = {
    "train_share": "share of generated images whose nearest real image (training and holdout of "
    "equal size) is a training image; 0.5 means no preference, higher is worse",
    "train_share_ci_low": "lower end of the 95% Wilson interval of train_share; higher is worse",
    "train_share_ci_high": "upper end of the 95% Wilson interval of train_share",
    "train_share_min": "smallest train_share over the repeats (spread from subsampling)",
    "train_share_max": "largest train_share over the repeats (spread from subsampling)",
    "sdmetrics_score": "min(2 * (1 - train_share), 1), as SDMetrics' DCROverfittingProtection; 1 "
    "is best, lower is worse",
    "median_distance_train": "median distance of a generated image to its nearest training image",
    "median_distance_holdout": "median distance of a generated image to its nearest holdout image",
}


def compute_dcr_holdout(real, generated, *, holdout=None, n_repeats=10, n_evidence=12, seed=0) -> CheckResult:
    r"""Measure whether generated images sit closer to training images than to holdout images.

    The training set (``real``) and the ``holdout`` are made equal in size by subsampling the
    larger without replacement. For each generated image :math:`g` the distance to the closest
    record (DCR) in each set is found, and

    .. math:: p = \frac{1}{n_g} \sum_g \left( 1[d_T(g) < d_H(g)] + \tfrac12 1[d_T(g) = d_H(g)] \right)

    is the share of generated images whose nearest real image is a training image. A generator
    that did not memorise has no preference, :math:`p \approx 0.5`; higher is worse. The
    SDMetrics-style score :math:`\min(2(1 - p), 1)` is reported as well (1 is best). The
    subsampling is repeated ``n_repeats`` times with ``seed``; ``train_share`` is the mean and
    the spread is reported.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Features of the training images.
    generated : ndarray of shape (n_generated, n_features), float
        Features of the generated images, same features.
    holdout : ndarray of shape (n_holdout, n_features), float
        Features of real images NOT used for training. Required; the audit skips this check
        when the dataset has no holdout.
    n_repeats : int, default=10
        Balanced subsamples, at least 1.
    n_evidence : int, default=12
        Generated images closest to a training image listed as evidence.
    seed : int, default=0
        Seed of the subsampling.

    Returns
    -------
    CheckResult
        ``statistic="train_share"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``interval`` is the 95% Wilson interval of ``train_share`` over the generated images
        and ``baseline`` is 0.5. Evidence: ``pairs`` are the generated images nearest to a
        training image; ``distributions`` hold the nearest-training and nearest-holdout
        distances of every generated image (first repeat).

    Raises
    ------
    ValueError
        For malformed arrays or options, or a missing holdout.
    DegenerateInputError
        If any of the three sets is empty.

    Notes
    -----
    The Wilson interval treats generated images as independent draws; a mode-collapsed set is
    not, so the interval is then too narrow. A holdout that shares patients with the generated
    images (for example two halves of the same scans) pulls :math:`p` towards 0.

    References
    ----------
    DataCebo. SDMetrics documentation: DCROverfittingProtection (https://docs.sdv.dev/sdmetrics).
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    holdout = validate_holdout(holdout, real)
    n_repeats = validate_int(n_repeats, "n_repeats", minimum=1)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    seed = validate_seed(seed)
    for rows, name in ((real, "real"), (generated, "generated"), (holdout, "holdout")):
        require_min_images(rows.shape[0], 1, name)

    size = min(real.shape[0], holdout.shape[0])
    rng = np.random.default_rng(seed)
    subsets = [(balanced_rows(real.shape[0], size, rng), balanced_rows(holdout.shape[0], size, rng))
               for _ in range(n_repeats)]
    to_train, to_holdout, train_index = _subset_minimum_distances(generated, real, holdout, subsets)

    shares = np.mean((to_train < to_holdout) + 0.5 * (to_train == to_holdout), axis=0)
    share = float(shares.mean())
    interval = wilson_interval(share, generated.shape[0])
    statistics = {
        "train_share": share,
        "train_share_ci_low": interval[0],
        "train_share_ci_high": interval[1],
        "train_share_min": float(shares.min()),
        "train_share_max": float(shares.max()),
        "sdmetrics_score": min(2 * (1 - share), 1.0),
        "median_distance_train": float(np.median(to_train[:, 0])),
        "median_distance_holdout": float(np.median(to_holdout[:, 0])),
    }

    closest = np.argsort(to_train[:, 0], kind="stable")[:n_evidence]
    pairs = tuple(ImagePair(int(g), int(train_index[g]), float(to_train[g, 0]), "distance to nearest training image")
                  for g in closest)
    distributions = {"generated -> training": to_train[:, 0], "generated -> holdout": to_holdout[:, 0]}
    params = {"n_repeats": n_repeats, "n_evidence": n_evidence, "seed": seed, "images_per_side": size,
              "n_holdout": holdout.shape[0]}
    return CheckResult(
        check="dcr_holdout",
        statistic="train_share",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=generated.shape[0],
        params=params,
        interval=interval,
        interval_kind="95% Wilson interval over generated images",
        baseline=0.5,
        baseline_kind="no preference between training and holdout",
        evidence=Evidence(pairs=pairs, distributions=distributions),
    )


def _subset_minimum_distances(generated, real, holdout, subsets):
    """Return per generated row and repeat the nearest distance within each subset.

    Returns ``to_train`` and ``to_holdout`` of shape (n_generated, n_repeats) and, per generated
    row, the training row nearest to it in the first repeat's subset. Distances come from the
    Gram identity in float64, clipped at 0, one block of generated rows at a time.
    """
    n_generated, n_repeats = generated.shape[0], len(subsets)
    to_train = np.empty((n_generated, n_repeats))
    to_holdout = np.empty((n_generated, n_repeats))
    train_index = np.empty(n_generated, dtype=np.intp)
    real64 = real.astype(np.float64)
    holdout64 = holdout.astype(np.float64)
    real_sq = np.einsum("ij,ij->i", real64, real64)
    holdout_sq = np.einsum("ij,ij->i", holdout64, holdout64)
    for rows in _neighbors.row_blocks(n_generated, _neighbors.BLOCK_ROWS):
        block = generated[rows].astype(np.float64)
        block_sq = np.einsum("ij,ij->i", block, block)[:, None]
        train_squared = np.maximum(block_sq + real_sq[None, :] - 2 * block @ real64.T, 0.0)
        holdout_squared = np.maximum(block_sq + holdout_sq[None, :] - 2 * block @ holdout64.T, 0.0)
        for repeat, (train_rows, holdout_rows) in enumerate(subsets):
            to_train[rows, repeat] = np.sqrt(train_squared[:, train_rows].min(axis=1))
            to_holdout[rows, repeat] = np.sqrt(holdout_squared[:, holdout_rows].min(axis=1))
        first_train = subsets[0][0]
        train_index[rows] = first_train[train_squared[:, first_train].argmin(axis=1)]
    return to_train, to_holdout, train_index
