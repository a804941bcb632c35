"""Equal-size samples for checks that compare generated images with one half of the real set.

Such a check splits the real set into halves by patient and takes each half in turn as the
reference. It compares a generated sample with the reference, and the other half with the
same reference as the real-vs-real baseline. The generated sample has as many images as the
other half's sample, so both comparisons have the same sample sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DegenerateInputError
from ._splits import split_halves

__all__ = ["MatchedSample", "draw_matched_samples"]


@dataclass(frozen=True)
class MatchedSample:
    """Row indices of one comparison: a reference half, the other half and the generated set.

    ``other`` and ``generated`` have the same length. ``split`` numbers the patient split the
    sample comes from; each split gives two samples, one per reference half.
    """

    reference: np.ndarray
    other: np.ndarray
    generated: np.ndarray
    split: int


def draw_matched_samples(n_real, n_generated, groups, *, n_splits, max_size, min_size, rng):
    """Return ``2 * n_splits`` matched samples from random real halves, split by patient if grouped.

    Parameters
    ----------
    n_real, n_generated : int
        Rows of the real and the generated feature matrices.
    groups : ndarray of int of shape (n_real,) or None
        Integer patient code of each real row, as ``validate_groups`` returns it.
    n_splits : int
        Number of random patient splits.
    max_size : int
        Largest sample drawn from one set. A larger half or generated set is subsampled
        without replacement.
    min_size : int
        Smallest sample the caller's estimator accepts.
    rng : numpy.random.Generator

    Returns
    -------
    list of MatchedSample
        Sorted row indices. The reference is its whole half (or ``max_size`` rows of it); the
        other half and the generated set each give
        ``min(max_size, len(other half), n_generated)`` rows.

    Raises
    ------
    DegenerateInputError
        If a split gives a half with fewer than ``min_size`` images. This happens when one
        patient has almost all real images.
    """
    samples = []
    for split in range(n_splits):
        first, second = split_halves(n_real, groups, rng)
        smaller = min(first.size, second.size)
        if smaller < min_size:
            raise DegenerateInputError(
                f"real must split into two halves of at least {min_size} images each; got halves of "
                f"{first.size} and {second.size} images in split {split} (one patient has most images)"
            )
        for reference, other in ((first, second), (second, first)):
            size = min(max_size, other.size, n_generated)
            samples.append(
                MatchedSample(
                    reference=_subsample(reference, max_size, rng),
                    other=_subsample(other, size, rng),
                    generated=_subsample(np.arange(n_generated), size, rng),
                    split=split,
                )
            )
    return samples


def _subsample(rows, size, rng):
    """Return ``size`` of ``rows`` drawn without replacement, sorted; all of them if there are fewer."""
    if rows.size <= size:
        return rows
    return np.sort(rng.choice(rows, size=size, replace=False))
