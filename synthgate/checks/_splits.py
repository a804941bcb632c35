"""Random halves of the real set, the reference for every real-vs-real baseline."""

from __future__ import annotations

import numpy as np

__all__ = ["split_halves"]


def split_halves(n_real, groups, rng):
    """Return row indices of two random halves of the real set, by patient when grouped.

    ``groups`` is None or an integer-coded patient id per row (as the checks' validators return
    them); ``rng`` is a ``numpy.random.Generator``.
    """
    if groups is None:
        order = rng.permutation(n_real)
        half = n_real // 2
        return np.sort(order[:half]), np.sort(order[half:])

    patients = rng.permutation(np.unique(groups))
    sizes = np.bincount(groups)[patients]
    cumulative = np.cumsum(sizes)[:-1]
    # Cut after the patient whose running total is closest to half; both halves non-empty.
    cut = int(np.argmin(np.abs(cumulative - n_real / 2))) + 1
    in_first = np.isin(groups, patients[:cut])
    return np.flatnonzero(in_first), np.flatnonzero(~in_first)
