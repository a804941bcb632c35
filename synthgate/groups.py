"""Infer patient groups of real slices when the dataset gives none.

Neighbouring slices of one CT volume are near-identical, so a real-vs-real baseline that pairs a
slice with its neighbour is far too strict a reference (and a classifier fold split that puts
neighbours on both sides is too easy). When no patient ids are known, slices are chained into
pseudo-patients: two slices whose ``pixels`` features have cosine similarity at least
``min_similarity`` belong to one group, and groups are the connected components of that graph.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["infer_groups", "INFERRED_GROUP_SIMILARITY"]

# Measured on centred, L2-normalised 64x64 pixel features of 814 real lung-CT slices of 43
# patients: slices up to 8 positions apart in one volume reach cosine 0.95 or more, and the most
# similar slice of another patient stays at or below 0.881. Chaining at 0.93 recovered the
# patients exactly (adjusted Rand index 1.0). Patients with scattered single slices became
# several groups.
INFERRED_GROUP_SIMILARITY = 0.93
_BLOCK_ROWS = 512


def infer_groups(pixels, *, min_similarity=INFERRED_GROUP_SIMILARITY) -> tuple[str, ...]:
    """Group slices into pseudo-patients by chaining near-identical neighbours.

    Parameters
    ----------
    pixels : ndarray of shape (n_images, n_features)
        Unit-norm ``pixels`` feature rows of the real images (cosine similarity = dot product).
    min_similarity : float, default=0.93
        Cosine similarity from which two slices are taken to come from one volume, in (0, 1].

    Returns
    -------
    tuple of str
        One group label per row, ``"inferred-<k>"``, numbered by first appearance.

    Notes
    -----
    Two different patients whose slices are this similar would be merged, which makes the
    baselines slightly more lenient, never stricter. Memory is linear in ``n_images``: the
    similarities are computed in blocks of rows and only the edges are kept.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim != 2 or pixels.shape[0] < 1:
        raise ValueError(f"pixels must be a non-empty 2-D array; got shape {pixels.shape}")
    if not 0 < min_similarity <= 1:
        raise ValueError(f"min_similarity must be in (0, 1]; got {min_similarity!r}")

    n_images = pixels.shape[0]
    rows, columns = [], []
    for start in range(0, n_images, _BLOCK_ROWS):
        similarity = pixels[start : start + _BLOCK_ROWS] @ pixels.T
        block_rows, block_columns = np.nonzero(similarity >= min_similarity)
        rows.append(block_rows + start)
        columns.append(block_columns)
    rows = np.concatenate(rows)
    columns = np.concatenate(columns)
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, columns)), shape=(n_images, n_images))
    _, labels = connected_components(graph, directed=False)

    # Number the groups by first appearance so the labels do not depend on scipy's order.
    order = {}
    for label in labels:
        order.setdefault(label, len(order))
    return tuple(f"inferred-{order[label]}" for label in labels)
