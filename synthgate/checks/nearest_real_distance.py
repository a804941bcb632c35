"""Distance from each generated image to its nearest real image (memorisation)."""

from __future__ import annotations

import logging

import numpy as np

from ..result import CheckResult, Evidence, ImagePair
from . import _neighbors
from ._validation import (
    require_min_groups,
    require_min_images,
    validate_features,
    validate_groups,
    validate_hashes,
    validate_int,
    validate_number,
    validate_same_features,
)

__all__ = ["compute_nearest_real_distance", "STATISTICS"]

logger = logging.getLogger(__name__)

STATISTICS = {
    "close_share": "share of generated images closer to a real image than the quantile of the "
    "real baseline distances; about quantile for an unseen patient, higher is worse",
    "expected_close_share": "the close_share expected for a generator that behaves like an unseen "
    "patient (equal to quantile)",
    "close_share_excess": "close_share - expected_close_share; higher is worse",
    "distance_threshold": "the quantile of the real baseline distances that defines close",
    "ratio_share": "share of generated images with d1 < ratio_threshold * d2 (nearest far nearer "
    "than the next patient); higher is worse",
    "real_ratio_share": "ratio_share of the real images against other patients; the baseline",
    "exact_copies": "generated images identical to a real image (pixel hash, else distance 0); "
    "must be 0",
    "median_distance": "median distance of a generated image to its nearest real image; lower is "
    "more memorised",
    "real_median_distance": "median real baseline distance; the reference for median_distance",
}

_SCORE_NAME = "euclidean distance"
# Two-sided 95% standard normal quantile for the Wilson interval.
_Z_95 = 1.959963984540054


def compute_nearest_real_distance(
    real,
    generated,
    *,
    real_groups=None,
    quantile=0.05,
    ratio_threshold=1 / 3,
    real_pixel_hashes=None,
    generated_pixel_hashes=None,
    n_evidence=12,
) -> CheckResult:
    r"""Measure how close generated images come to individual real images.

    For each generated row :math:`g` the Euclidean distance to its nearest real row
    :math:`d_1(g) = \min_r \lVert g - r \rVert` is compared with a real baseline: for each
    real row, the distance to its nearest real row of another patient. A generator that
    behaves like a new patient lands about as close to the real set as a held-out patient
    does, so the share of generated images below the ``quantile`` of the baseline
    distances,

    .. math:: \text{close\_share} = \frac{1}{n_g} \#\{g : d_1(g) < q_{\text{quantile}}(d_{\text{real}})\},

    is about ``quantile``. Higher means that generated images sit nearer to training
    images than real patients sit to each other (memorisation): higher is worse.

    ``ratio_share`` is the share of generated images with :math:`d_1 < \rho \, d_2`
    (``rho = ratio_threshold``), i.e. much nearer to one real image than to the next
    candidate: the ratio test of Lowe (2004). With groups, :math:`d_2` is the distance to
    the nearest real image of a *different patient* than the nearest one. Neighbouring
    slices of the same scan are almost as near as the nearest slice, so with them
    :math:`d_1/d_2` would be close to 1 even for a copy. Without groups :math:`d_2` is the
    second-nearest real row. ``real_ratio_share`` applies the same test to each real row
    against the other patients (first neighbour of another patient, second of a third one).

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Feature rows of the real (training) images, e.g. centred L2-normalised pixels, for
        which the Euclidean distance is :math:`\sqrt{2 - 2\cos}`.
    generated : ndarray of shape (n_generated, n_features), float
        Feature rows of the generated images, same features as ``real``.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each real image. Strongly recommended: without it the baseline is the
        distance to the nearest *other slice*, which for volumetric data is a neighbouring
        slice of the same scan, so the threshold becomes tiny and ``close_share``
        understates memorisation. A warning is logged in that case.
    quantile : float, default=0.05
        Quantile of the real baseline distances that defines "close", in (0, 1).
    ratio_threshold : float, default=1/3
        Ratio :math:`\rho` in (0, 1] for ``ratio_share``.
    real_pixel_hashes, generated_pixel_hashes : sequence of str or bytes, optional
        Hashes of the decoded pixels of each image, both or neither. When given,
        ``exact_copies`` counts generated images whose hash equals a real image's hash;
        otherwise it counts generated images at distance exactly 0.
    n_evidence : int, default=12
        Number of closest generated/real pairs listed as evidence besides the exact copies,
        which are always all listed.

    Returns
    -------
    CheckResult
        ``statistic="close_share"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``interval`` is the 95% Wilson score interval of ``close_share`` (binomial, so it
        treats generated images as independent) and ``baseline`` is ``quantile``. Evidence
        ``pairs`` lists every exact copy first, then the ``n_evidence`` smallest :math:`d_1`, with the distance
        as ``ImagePair.score``. ``distributions["generated"]`` is :math:`d_1` of every
        generated image and ``distributions["real"]`` the baseline distance of every real
        image.

    Raises
    ------
    ValueError
        For malformed arrays, hashes or options.
    DegenerateInputError
        If the generated set is empty, or the real set has fewer than 3 images (without
        groups) or 3 patients (with groups): the real ratio test needs a first and a second
        neighbour besides the image itself.

    Notes
    -----
    The threshold is ``numpy.quantile`` (linear interpolation) of the ``n_real`` baseline
    distances. With ``n_real < 1 / quantile`` it is interpolated between the two smallest
    baseline distances, so ``close_share`` then has little resolution. Distances are
    recomputed in float64 from the difference vectors of the selected pairs, so an exact
    copy has distance 0 even when the search runs in float32.

    References
    ----------
    Lowe, D. G. (2004). Distinctive image features from scale-invariant keypoints.
    International Journal of Computer Vision, 60(2), 91-110.

    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
    inference. Journal of the American Statistical Association, 22(158), 209-212.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    groups = validate_groups(real_groups, real.shape[0])
    quantile = validate_number(quantile, "quantile", low=0.0, high=1.0)
    ratio_threshold = validate_number(
        ratio_threshold, "ratio_threshold", low=0.0, high=1.0, high_inclusive=True
    )
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    if (real_pixel_hashes is None) != (generated_pixel_hashes is None):
        present = "real_pixel_hashes" if real_pixel_hashes is not None else "generated_pixel_hashes"
        raise ValueError(
            f"real_pixel_hashes and generated_pixel_hashes must be given together; got only {present}"
        )
    if real_pixel_hashes is not None:
        real_pixel_hashes = validate_hashes(real_pixel_hashes, real.shape[0], "real_pixel_hashes")
        generated_pixel_hashes = validate_hashes(
            generated_pixel_hashes, generated.shape[0], "generated_pixel_hashes"
        )
    require_min_images(generated.shape[0], 1, "generated")
    require_min_images(real.shape[0], 3, "real", "the baseline needs two neighbours per image")
    if groups is not None:
        require_min_groups(groups, 3, "real_groups", "the baseline needs neighbours of two other patients")
    else:
        logger.warning(
            "real_groups not given: the real baseline uses the nearest other image, usually a "
            "neighbouring slice of the same scan, so the close threshold is small"
        )

    block_rows = _neighbors.BLOCK_ROWS
    d1, j1, d2, _ = _neighbors.two_nearest(
        generated, real, reference_groups=groups, block_rows=block_rows
    )
    real_d1, _, real_d2, _ = _neighbors.two_nearest(
        real,
        real,
        reference_groups=groups,
        query_groups=groups,
        exclude_self=groups is None,
        block_rows=block_rows,
    )

    threshold = float(np.quantile(real_d1, quantile))
    n_generated = generated.shape[0]
    n_close = int(np.count_nonzero(d1 < threshold))
    close_share = n_close / n_generated

    if real_pixel_hashes is not None:
        copies = _hash_copies(real_pixel_hashes, generated_pixel_hashes)
        copy_pairs = [(g, r, float(np.linalg.norm(generated[g] - real[r].astype(np.float64))))
                      for g, r in copies]
    else:
        copy_pairs = [(int(g), int(j1[g]), float(d1[g])) for g in np.flatnonzero(d1 == 0)]

    statistics = {
        "close_share": close_share,
        "expected_close_share": quantile,
        "close_share_excess": close_share - quantile,
        "distance_threshold": threshold,
        "ratio_share": float(np.mean(d1 < ratio_threshold * d2)),
        "real_ratio_share": float(np.mean(real_d1 < ratio_threshold * real_d2)),
        "exact_copies": float(len(copy_pairs)),
        "median_distance": float(np.median(d1)),
        "real_median_distance": float(np.median(real_d1)),
    }

    evidence = Evidence(
        pairs=_evidence_pairs(copy_pairs, d1, j1, n_evidence),
        distributions={"generated": d1, "real": real_d1},
    )
    reference = "another patient" if groups is not None else "any other real image (no patient groups)"
    baseline_kind = (
        f"expected close share: by construction {quantile:g} of real images are closer than this "
        f"to {reference}"
    )
    params = {
        "quantile": quantile,
        "ratio_threshold": ratio_threshold,
        "grouped": groups is not None,
        "n_real_patients": int(np.unique(groups).size) if groups is not None else None,
        "exact_copies_by": "pixel hash" if real_pixel_hashes is not None else "zero distance",
        "n_evidence": n_evidence,
        "search_dtype": np.dtype(_neighbors.computation_dtype(real, generated)).name,
    }
    return CheckResult(
        check="nearest_real_distance",
        statistic="close_share",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=n_generated,
        params=params,
        interval=_wilson_interval(n_close, n_generated),
        interval_kind="95% Wilson score interval (binomial)",
        baseline=quantile,
        baseline_kind=baseline_kind,
        evidence=evidence,
    )


def _hash_copies(real_hashes, generated_hashes):
    """Return (generated row, first real row with the same hash) for every exact copy."""
    first_real = {}
    for index, value in enumerate(real_hashes):
        first_real.setdefault(value, index)
    return [
        (index, first_real[value])
        for index, value in enumerate(generated_hashes)
        if value in first_real
    ]


def _evidence_pairs(copy_pairs, d1, j1, n_evidence):
    """Return every exact copy, then the ``n_evidence`` closest other generated rows."""
    pairs = [ImagePair(g, r, distance, _SCORE_NAME) for g, r, distance in copy_pairs]
    listed = {pair.generated for pair in pairs}
    for g in np.argsort(d1, kind="stable"):
        if len(pairs) >= len(copy_pairs) + n_evidence:
            break
        if int(g) not in listed:
            pairs.append(ImagePair(int(g), int(j1[g]), float(d1[g]), _SCORE_NAME))
    return tuple(pairs)


def _wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """Return the 95% Wilson score interval of a binomial proportion."""
    p = successes / trials
    z2 = _Z_95**2
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half_width = _Z_95 * np.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2)) / denominator
    return float(max(0.0, centre - half_width)), float(min(1.0, centre + half_width))
