"""Structural diversity: are generated slices more alike than real ones (mode collapse)?"""

from __future__ import annotations

import logging
import sys

import numpy as np
from tqdm import tqdm

from ..errors import DegenerateInputError
from ..features.body_mask import check_image_stack
from ..msssim import MS_SSIM_WEIGHTS, combine_terms, ms_ssim_components
from ..result import CheckResult, Evidence
from ._validation import require_min_groups, require_min_images, validate_groups, validate_int, validate_seed
from ._splits import split_halves

__all__ = ["compute_structural_diversity", "STATISTICS"]

logger = logging.getLogger(__name__)

STATISTICS = {
    "generated_msssim": "mean MS-SSIM over random pairs of generated images; higher is less diverse",
    "real_msssim": "mean MS-SSIM over random pairs of real images; the baseline",
    "msssim_gap": "generated_msssim - real_msssim; higher is worse",
    "real_split_spread": "mean |difference| of the pair mean between two halves of the real set, "
    "over splits; how much the real value moves between subsets of patients",
    "msssim_excess": "msssim_gap - real_split_spread; higher is worse",
    "clipped_pair_share": "share of evaluated pairs with a negative per-scale term, counted as 0 "
    "(such a pair has MS-SSIM 0)",
}

# Grey levels of 8-bit slices span 0-255; MS-SSIM needs the range explicitly.
DATA_RANGE = 255
# Pairs whose images are decoded together; bounds memory to about 2 * 32 images at a time.
_PAIRS_PER_BATCH = 32


def compute_structural_diversity(
    real,
    generated,
    *,
    real_groups=None,
    n_pairs=200,
    n_splits=20,
    n_evidence=8,
    seed=0,
) -> CheckResult:
    r"""Compare the mean pairwise MS-SSIM of generated images with that of real images.

    ``n_pairs`` random pairs of distinct images are drawn from each set (with replacement
    between pairs), and the MS-SSIM of each pair is computed on the full-size slices
    (:func:`synthgate.msssim.ms_ssim`, five scales, ``data_range=255``). The mean over pairs
    estimates how alike two random slices of the set are: higher means less diverse. A set
    that repeats a narrow range of anatomy has a higher mean than the real set.

    The gate bounds

    .. math:: \text{msssim\_excess} = (\bar m_{gen} - \bar m_{real}) - \text{spread},

    where the spread is how much the same mean differs between two halves of the real set.
    The real set is split ``n_splits`` times (by patient when groups are given). For each
    split, the mean over the drawn real pairs within one half is compared with the mean over
    those within the other, so the spread needs no extra MS-SSIM.

    Only the images of the drawn pairs are decoded, ``2 * 32`` at a time.

    Parameters
    ----------
    real, generated : ImageSet or ndarray of shape (n, H, W), uint8
        The images: a :class:`~synthgate.dataset.ImageSet` (decoded on demand through its
        ``images(indices)``) or a stack of slices, grey levels 0-255. ``H`` and ``W`` must be
        multiples of 16 and at least 176.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each real image. The halves are split by patient when given.
    n_pairs : int, default=200
        Pairs drawn from each set, at least 10.
    n_splits : int, default=20
        Number of random real halves for the spread.
    n_evidence : int, default=8
        Number of most similar generated pairs listed in ``evidence.generated_pairs``.
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the pairs and the halves.

    Returns
    -------
    CheckResult
        ``statistic="generated_msssim"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``baseline`` is ``real_msssim``. ``interval`` is a normal-approximation 95% interval of
        ``generated_msssim`` over its pairs (ignoring that pairs share images). Evidence:
        ``distributions`` ``"generated"`` and ``"real"`` (MS-SSIM of every drawn pair) and
        ``generated_pairs`` (the most similar generated pairs with their MS-SSIM).

    Raises
    ------
    ValueError
        For malformed images or options.
    DegenerateInputError
        If the generated set has fewer than 2 images, the real set fewer than 4 (or 2 patients
        with groups), or no split puts a drawn real pair in each half.

    Notes
    -----
    One MS-SSIM of two 256x256 slices takes about 13 ms with scikit-image's SSIM (2-core x86
    VM), so the cost is fixed by ``n_pairs`` (about 5 s for the defaults), not by the set sizes.
    With 200 pairs the standard error of a mean is about 0.01 on lung CT, where the pair
    MS-SSIM has a standard deviation of about 0.15. A real half contains fewer patients than
    the whole set, and two random slices of one patient are more alike than slices of two
    patients. The halves' pair means are therefore higher than the whole set's, and their
    difference also reflects which patients each half received.

    References
    ----------
    Odena, A., Olah, C., & Shlens, J. (2017). Conditional image synthesis with auxiliary
    classifier GANs. ICML (MS-SSIM between random pairs as a diversity measure).
    """
    real = _as_source(real, "real")
    generated = _as_source(generated, "generated")
    n_real, n_generated = len(real), len(generated)
    groups = validate_groups(real_groups, n_real)
    n_pairs = validate_int(n_pairs, "n_pairs", minimum=10)
    n_splits = validate_int(n_splits, "n_splits", minimum=1)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    seed = validate_seed(seed)
    require_min_images(n_generated, 2, "generated", "a pair of distinct images is needed")
    require_min_images(n_real, 4, "real", "two halves of at least 2 images")
    if groups is not None:
        require_min_groups(groups, 2, "real_groups", "the halves are split by patient")

    rng = np.random.default_rng(seed)
    generated_pairs = _draw_pairs(n_generated, n_pairs, rng)
    real_pairs = _draw_pairs(n_real, n_pairs, rng)
    generated_terms = _pair_terms(generated, generated_pairs, "generated")
    real_terms = _pair_terms(real, real_pairs, "real")
    generated_values = np.array([combine_terms(terms) for terms in generated_terms])
    real_values = np.array([combine_terms(terms) for terms in real_terms])

    differences = []
    for _ in range(n_splits):
        first, second = split_halves(n_real, groups, rng)
        in_first = np.zeros(n_real, dtype=bool)
        in_first[first] = True
        both_first = in_first[real_pairs[:, 0]] & in_first[real_pairs[:, 1]]
        both_second = ~in_first[real_pairs[:, 0]] & ~in_first[real_pairs[:, 1]]
        if both_first.any() and both_second.any():
            differences.append(abs(real_values[both_first].mean() - real_values[both_second].mean()))
    if not differences:
        raise DegenerateInputError(
            f"real must give pairs within both halves of at least one split; got none in {n_splits} splits "
            f"of {n_real} images (raise n_pairs or n_splits)"
        )

    generated_mean = float(generated_values.mean())
    statistics = {
        "generated_msssim": generated_mean,
        "real_msssim": float(real_values.mean()),
        "real_split_spread": float(np.mean(differences)),
        "clipped_pair_share": float(
            np.mean(np.concatenate([(generated_terms < 0).any(axis=1), (real_terms < 0).any(axis=1)]))
        ),
    }
    statistics["msssim_gap"] = statistics["generated_msssim"] - statistics["real_msssim"]
    statistics["msssim_excess"] = statistics["msssim_gap"] - statistics["real_split_spread"]

    half_width = 1.959963984540054 * generated_values.std(ddof=1) / np.sqrt(n_pairs)
    order = np.lexsort((np.arange(n_pairs), -generated_values))
    most_similar, seen = [], set()
    for k in order:
        key = tuple(sorted(generated_pairs[k]))
        if key not in seen:
            seen.add(key)
            most_similar.append((int(key[0]), int(key[1]), float(generated_values[k])))
        if len(most_similar) == n_evidence:
            break

    split_kind = "by patient" if groups is not None else "by image"
    params = {
        "n_pairs": n_pairs,
        "n_splits": n_splits,
        "n_splits_used": len(differences),
        "n_evidence": n_evidence,
        "seed": seed,
        "grouped": groups is not None,
        "data_range": DATA_RANGE,
        "ms_ssim_weights": list(MS_SSIM_WEIGHTS),
        "negative_terms": "set to 0",
    }
    return CheckResult(
        check="structural_diversity",
        statistic="generated_msssim",
        statistics=statistics,
        n_real=n_real,
        n_generated=n_generated,
        params=params,
        interval=(generated_mean - half_width, generated_mean + half_width),
        interval_kind="95% normal interval over pairs",
        baseline=statistics["real_msssim"],
        baseline_kind=f"mean MS-SSIM of {n_pairs} random real pairs; real halves split {split_kind}",
        evidence=Evidence(
            distributions={"generated": generated_values, "real": real_values},
            generated_pairs=tuple(most_similar),
        ),
    )


class _StackSource:
    """An in-memory stack of slices with the ``len`` and ``images(indices)`` of an ImageSet."""

    def __init__(self, stack: np.ndarray):
        self._stack = stack

    def __len__(self) -> int:
        return len(self._stack)

    def images(self, indices) -> np.ndarray:
        return self._stack[np.asarray(indices, dtype=np.intp)]


def _as_source(images, name):
    """Wrap a stack of slices; pass an ImageSet-like object (``len`` and ``images``) through."""
    if isinstance(images, np.ndarray):
        try:
            return _StackSource(check_image_stack(images))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    if not (hasattr(images, "images") and hasattr(images, "__len__")):
        raise ValueError(
            f"{name} must be an ImageSet or a uint8 array of shape (n, H, W); got {type(images).__name__}"
        )
    return images


def _draw_pairs(n_images, n_pairs, rng) -> np.ndarray:
    """Draw ``n_pairs`` pairs of distinct indices below ``n_images``, shape (n_pairs, 2)."""
    first = rng.integers(0, n_images, n_pairs)
    second = rng.integers(0, n_images - 1, n_pairs)
    second = second + (second >= first)
    return np.column_stack([first, second])


def _pair_terms(source, pairs, role) -> np.ndarray:
    """Return the MS-SSIM terms of every pair, shape (n_pairs, 5), decoding one batch at a time."""
    terms = np.empty((len(pairs), len(MS_SSIM_WEIGHTS)))
    progress = tqdm(total=len(pairs), desc=f"MS-SSIM pairs ({role})", unit="pair", leave=False,
                    disable=not sys.stderr.isatty())
    with progress:
        for start in range(0, len(pairs), _PAIRS_PER_BATCH):
            batch = pairs[start : start + _PAIRS_PER_BATCH]
            unique, positions = np.unique(batch, return_inverse=True)
            positions = positions.reshape(batch.shape)
            images = np.asarray(source.images(unique))
            if images.ndim != 3 or images.dtype != np.uint8:
                raise ValueError(f"{role} images must decode to a uint8 stack (n, H, W); got {images.dtype} {images.shape}")
            for row, (a, b) in enumerate(positions):
                terms[start + row] = ms_ssim_components(images[a], images[b], data_range=DATA_RANGE)
            progress.update(len(batch))
    return terms
