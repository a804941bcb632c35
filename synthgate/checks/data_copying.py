"""The data-copying test of Meehan, Chaudhuri and Dasgupta: are generated images too close to training?"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.cluster import KMeans

from ..errors import DegenerateInputError
from ..result import CheckResult, Evidence, ImagePair
from ._holdout import nearest, validate_holdout
from ._validation import (
    require_min_images,
    validate_features,
    validate_int,
    validate_seed,
    validate_same_features,
)

__all__ = ["compute_data_copying", "STATISTICS"]

# Rule for the default number of cells: at most MAX_CELLS, about HOLDOUT_PER_CELL holdout images each.
MAX_CELLS = 10
HOLDOUT_PER_CELL = 20

STATISTICS = {
    "c_t": "C_T: holdout-weighted mean of the per-cell Mann-Whitney Z of generated vs holdout "
    "distances to training; about 0 without copying, lower (negative) is worse",
    "min_cell_z": "lowest per-cell Z among the cells used; lower is worse",
    "cells_used": "cells with at least min_cell_size generated and holdout images",
    "excluded_generated_share": "share of generated images in cells that were not used",
    "excluded_holdout_share": "share of holdout images in cells that were not used",
    "median_distance_generated": "median distance of a generated image to the nearest training image of its cell",
    "median_distance_holdout": "median distance of a holdout image to the nearest training image of its cell",
}


def compute_data_copying(real, generated, *, holdout=None, n_cells=None, min_cell_size=5, n_evidence=12,
                         seed=0) -> CheckResult:
    r"""Compute the C_T statistic: do generated images sit closer to training images than unseen images do?

    The training set (``real``) is partitioned into ``n_cells`` cells by k-means; generated and
    holdout images join the cell of their nearest centroid. In each cell :math:`\pi` the
    distances :math:`L(x) = \min_{t \in T_\pi} \lVert x - t \rVert` of generated images
    :math:`Q_\pi` and holdout images :math:`P_\pi` to the cell's training images are compared by
    the Mann-Whitney U statistic, :math:`U = \#\{(q, p): L(q) > L(p)\}` (ties count one half),
    standardised under the null hypothesis of equal distributions (with the tie correction):

    .. math:: Z_\pi = \frac{U - m n / 2}{\sqrt{\tfrac{m n}{12}\left(m + n + 1 - \tfrac{\sum_t (t^3 - t)}{(m + n)(m + n - 1)}\right)}}

    for :math:`m` generated and :math:`n` holdout images of the cell. Negative :math:`Z_\pi`
    means the generated images are closer to the training images than unseen images are: data
    copying. The statistic is the holdout-weighted mean over the cells that hold at least
    ``min_cell_size`` generated and holdout images,

    .. math:: C_T = \frac{\sum_\pi P_n(\pi) Z_\pi}{\sum_\pi P_n(\pi)},

    with :math:`P_n(\pi)` the share of holdout images in the cell. Lower is worse. Under the
    null each :math:`Z_\pi` is approximately standard normal, and a weighted mean of
    independent ones has a variance of at most 1, so :math:`C_T < -3` lies in the 0.13% lower
    tail or further out.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Features of the training images; also what the cells are built from.
    generated : ndarray of shape (n_generated, n_features), float
        Features of the generated images, same features.
    holdout : ndarray of shape (n_holdout, n_features), float
        Features of real images NOT used for training. Required; the audit skips this check
        when the dataset has no holdout.
    n_cells : int or None, default=None
        Number of k-means cells, from 1 to ``n_real``. None takes
        ``min(10, max(1, n_holdout // 20))``: about 20 holdout images per cell on average, and one
        cell for a small holdout.
    min_cell_size : int, default=5
        Fewest generated and fewest holdout images a cell needs to be used, at least 1.
    n_evidence : int, default=12
        Generated images of the most negative cell listed as evidence.
    seed : int, default=0
        Seed of k-means (scikit-learn, 4 initialisations).

    Returns
    -------
    CheckResult
        ``statistic="c_t"``; ``statistics`` has the keys of :data:`STATISTICS`. ``baseline`` is
        0. Evidence: ``table`` has one row per cell. ``pairs`` are the generated images of the
        most negative cell nearest to a training image. ``distributions`` hold the in-cell
        distances to training of generated and holdout images.

    Raises
    ------
    ValueError
        For malformed arrays or options, a missing holdout, or ``n_cells > n_real``.
    DegenerateInputError
        If a set is empty, or no cell contains ``min_cell_size`` generated and holdout images
        (use fewer cells or a larger holdout).

    Notes
    -----
    The authors' implementation drops cells with few generated images and rejects cells without
    holdout images. Here both kinds are left out, and the shares of images they hold are
    reported, because copying concentrated in such a cell is not measured. The weights are the
    holdout shares, as in the authors' implementation.

    References
    ----------
    Meehan, C., Chaudhuri, K., & Dasgupta, S. (2020). A non-parametric test to detect
    data-copying in generative models. Proceedings of the 23rd International Conference on
    Artificial Intelligence and Statistics (AISTATS), PMLR 108.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    holdout = validate_holdout(holdout, real)
    for rows, name in ((real, "real"), (generated, "generated"), (holdout, "holdout")):
        require_min_images(rows.shape[0], 1, name)
    if n_cells is None:
        n_cells = min(MAX_CELLS, max(1, holdout.shape[0] // HOLDOUT_PER_CELL))
    n_cells = validate_int(n_cells, "n_cells", minimum=1)
    if n_cells > real.shape[0]:
        raise ValueError(f"n_cells must be at most the number of real images ({real.shape[0]}); got {n_cells}")
    min_cell_size = validate_int(min_cell_size, "min_cell_size", minimum=1)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    seed = validate_seed(seed)

    kmeans = KMeans(n_clusters=n_cells, n_init=4, random_state=seed).fit(real.astype(np.float64))
    cell_real = kmeans.labels_
    cell_generated = kmeans.predict(generated.astype(np.float64))
    cell_holdout = kmeans.predict(holdout.astype(np.float64))

    distance_generated = np.empty(generated.shape[0])
    distance_holdout = np.empty(holdout.shape[0])
    nearest_generated = np.empty(generated.shape[0], dtype=np.intp)
    rows, z_scores, weights = [], {}, {}
    for cell in range(n_cells):
        training = np.flatnonzero(cell_real == cell)
        in_generated = np.flatnonzero(cell_generated == cell)
        in_holdout = np.flatnonzero(cell_holdout == cell)
        if in_generated.size:
            distance_generated[in_generated], index = nearest(generated[in_generated], real[training])
            nearest_generated[in_generated] = training[index]
        if in_holdout.size:
            distance_holdout[in_holdout], _ = nearest(holdout[in_holdout], real[training])
        z_score = None
        if min(in_generated.size, in_holdout.size) >= min_cell_size:
            z_score = _mann_whitney_z(distance_generated[in_generated], distance_holdout[in_holdout])
        if z_score is not None:
            z_scores[cell] = z_score
            weights[cell] = in_holdout.size / holdout.shape[0]
        rows.append({"cell": cell, "training": int(training.size), "generated": int(in_generated.size),
                     "holdout": int(in_holdout.size), "z": None if z_score is None else round(z_score, 3),
                     "used": z_score is not None})

    if not z_scores:
        raise DegenerateInputError(
            f"data_copying must find a cell with at least {min_cell_size} generated and {min_cell_size} "
            f"holdout images; got none of {n_cells} cells (use a smaller n_cells or min_cell_size, or a larger holdout)"
        )
    used = np.array(sorted(z_scores))
    weight = np.array([weights[cell] for cell in used])
    z = np.array([z_scores[cell] for cell in used])
    c_t = float(weight @ z / weight.sum())

    statistics = {
        "c_t": c_t,
        "min_cell_z": float(z.min()),
        "cells_used": float(used.size),
        "excluded_generated_share": float(np.mean(~np.isin(cell_generated, used))),
        "excluded_holdout_share": float(np.mean(~np.isin(cell_holdout, used))),
        "median_distance_generated": float(np.median(distance_generated)),
        "median_distance_holdout": float(np.median(distance_holdout)),
    }
    worst = int(used[z.argmin()])
    in_worst = np.flatnonzero(cell_generated == worst)
    closest = in_worst[np.argsort(distance_generated[in_worst], kind="stable")[:n_evidence]]
    pairs = tuple(ImagePair(int(g), int(nearest_generated[g]), float(distance_generated[g]),
                            "distance to nearest training image of the cell") for g in closest)
    distributions = {"generated -> training": distance_generated, "holdout -> training": distance_holdout}
    params = {"n_cells": n_cells, "min_cell_size": min_cell_size, "n_evidence": n_evidence, "seed": seed,
              "n_holdout": holdout.shape[0], "kmeans_init": 4}
    return CheckResult(
        check="data_copying",
        statistic="c_t",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=generated.shape[0],
        params=params,
        baseline=0.0,
        baseline_kind="expected C_T without data copying",
        evidence=Evidence(pairs=pairs, table=tuple(rows), distributions=distributions),
    )


def _mann_whitney_z(generated, holdout):
    """Return the tie-corrected Z of U = #{(q, p): L(q) > L(p)}, or None when every distance ties."""
    m, n = generated.size, holdout.size
    ranks = rankdata(np.r_[generated, holdout])
    u = ranks[:m].sum() - m * (m + 1) / 2
    _, counts = np.unique(np.r_[generated, holdout], return_counts=True)
    total = m + n
    tie_term = float(np.sum(counts**3 - counts)) / (total * (total - 1)) if total > 1 else 0.0
    variance = m * n / 12 * (total + 1 - tie_term)
    if variance <= 0:
        return None
    return float((u - m * n / 2) / np.sqrt(variance))
