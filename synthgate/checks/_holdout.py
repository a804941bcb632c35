"""Helpers shared by the checks that compare the generated set with a holdout set.

A holdout is a set of real images that were NOT used to train the generator. It is what the
generated set should look like, from the training set's point of view, if the generator did not
memorise: the holdout checks compare generated-to-training relations with holdout-to-training
relations. All pairwise work is done in row blocks, so memory grows linearly with the number of
images.
"""

from __future__ import annotations

import numpy as np

from ..errors import DegenerateInputError
from . import _neighbors
from ._validation import validate_features

__all__ = [
    "HOLDOUT_MISSING",
    "validate_holdout",
    "nearest",
    "nearest_per_group",
    "balanced_rows",
    "wilson_interval",
    "Z_95",
]

HOLDOUT_MISSING = (
    "holdout must be a feature matrix of real images that were not used to train the generator; "
    "got None. In an audit, add holdout = \"<folder>\" to the dataset table of thresholds.toml or "
    "pass --holdout DIR"
)

# Two-sided 95% standard normal quantile.
Z_95 = 1.959963984540054


def validate_holdout(holdout, real: np.ndarray) -> np.ndarray:
    """Check the holdout feature matrix against the real one and return it as a float array."""
    if holdout is None:
        raise ValueError(HOLDOUT_MISSING)
    holdout = validate_features(holdout, "holdout")
    if holdout.shape[1] != real.shape[1]:
        raise ValueError(
            f"holdout must have as many features as real ({real.shape[1]}); got {holdout.shape[1]} "
            f"(shape={holdout.shape})"
        )
    return holdout


def nearest(
    query: np.ndarray,
    reference: np.ndarray,
    *,
    query_groups: np.ndarray | None = None,
    reference_groups: np.ndarray | None = None,
    exclude_self: bool = False,
    block_rows: int = _neighbors.BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the Euclidean distance to the nearest reference row and its index, per query row.

    With both group arrays, reference rows of the query's own group (patient) are excluded;
    with ``exclude_self`` (``query`` is ``reference``), the row itself is excluded. Distances
    are recomputed in float64 from the difference vectors, so an exact copy has distance 0.

    Raises
    ------
    DegenerateInputError
        If some query row has no eligible reference row.
    """
    dtype = _neighbors.computation_dtype(query, reference)
    reference_c = reference.astype(dtype, copy=False)
    reference_sq = np.einsum("ij,ij->i", reference_c, reference_c)
    index = np.empty(query.shape[0], dtype=np.intp)
    for rows in _neighbors.row_blocks(query.shape[0], block_rows):
        block = query[rows].astype(dtype, copy=False)
        squared = np.einsum("ij,ij->i", block, block)[:, None] + reference_sq[None, :] - 2 * (block @ reference_c.T)
        if query_groups is not None and reference_groups is not None:
            squared[query_groups[rows, None] == reference_groups[None, :]] = np.inf
        if exclude_self:
            local = np.arange(rows.stop - rows.start)
            squared[local, rows.start + local] = np.inf
        index[rows] = np.argmin(squared, axis=1)
        if np.isinf(squared[np.arange(squared.shape[0]), index[rows]]).any():
            raise DegenerateInputError(
                "every image must have an eligible nearest neighbour (another image, of another "
                "patient when groups are given); got an image with none"
            )
    distance = _neighbors.pair_distances(query, reference.astype(np.float64, copy=False), index, block_rows)
    return distance, index


def nearest_per_group(
    query: np.ndarray, reference: np.ndarray, reference_codes: np.ndarray, block_rows: int = _neighbors.BLOCK_ROWS
) -> np.ndarray:
    """Return the distance from each query row to the nearest reference row of each group.

    Parameters
    ----------
    reference_codes : ndarray of int of shape (n_reference,)
        Group codes 0..n_groups-1, every code present.

    Returns
    -------
    ndarray of shape (n_query, n_groups), float64
        Distances from the Gram identity, clipped at 0 before the square root, so an exact copy
        may show a distance of about 1e-4 instead of 0 in float32 features.
    """
    order = np.argsort(reference_codes, kind="stable")
    sorted_reference = reference[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, np.diff(reference_codes[order]) != 0])
    reference_sq = np.einsum("ij,ij->i", sorted_reference, sorted_reference)
    out = np.empty((query.shape[0], starts.size))
    for rows in _neighbors.row_blocks(query.shape[0], block_rows):
        block = query[rows].astype(np.float64)
        squared = np.einsum("ij,ij->i", block, block)[:, None] + reference_sq[None, :] - 2 * (block @ sorted_reference.T)
        out[rows] = np.sqrt(np.maximum(np.minimum.reduceat(squared, starts, axis=1), 0.0))
    return out


def balanced_rows(n_rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``size`` sorted rows drawn without replacement, or every row when ``n_rows == size``."""
    if n_rows == size:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


def wilson_interval(share: float, n: int) -> tuple[float, float]:
    """Return the 95% Wilson score interval of a binomial proportion ``share`` of ``n`` trials."""
    z2 = Z_95**2
    denominator = 1 + z2 / n
    centre = (share + z2 / (2 * n)) / denominator
    half_width = Z_95 * np.sqrt(share * (1 - share) / n + z2 / (4 * n**2)) / denominator
    return float(max(0.0, centre - half_width)), float(min(1.0, centre + half_width))
