"""Align one generated slice with one real slice and score how much of it is copied.

The functions here do the expensive part of :mod:`synthgate.checks.copy_detection` for one
generated slice and its candidates. Decoded 256x256 slices are reduced to 128x128 (2x2 means).
The real slice is registered onto the generated one (mirror, scale and sub-pixel translation),
and three scores are computed on the body region:

* ``whole``: mean structural similarity (SSIM, Wang et al. 2004) over the union of both body
  masks, after a least-squares grey-level fit of the real slice to the generated one, so that
  brightness and contrast changes do not lower it;
* ``local``: the largest Pearson correlation of fine detail (the slice minus a Gaussian blur)
  in a square window inside both bodies, after registering the window's neighbourhood;
* ``blend``: SSIM between the generated slice and its least-squares fit by two real slices.

Boxes are returned in working-size pixels as ``(top, left, bottom, right)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..features.body_mask import body_mask

__all__ = [
    "Prepared", "prepare", "search_spectra", "register", "whole_similarity", "local_similarity",
    "blend_similarity", "ssim_map", "body_box",
]

WORK_SIDE = 128
SEARCH_SIDE = 64
# Zooms tried when registering a pair: a crop of 95% of the side resized back is a zoom of
# 1/0.95 = 1.053, so the grid reaches 5% either way in steps of 2.5%.
SCALES = (1 / 1.05, 1 / 1.025, 1.0, 1.025, 1.05)
# Largest translation searched, in SEARCH_SIDE pixels (4 working-size pixels each).
MAX_SHIFT = 6
# SSIM constants of Wang et al. (2004) for 8-bit grey levels, Gaussian window sigma 1.5 px.
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_SSIM_SIGMA = 1.5
# Fine detail for the local score: the slice minus its Gaussian blur (sigma in WORK_SIDE px).
_DETAIL_SIGMA = 2.0


@dataclass(frozen=True)
class Prepared:
    """One slice reduced for matching: grey levels and body mask at two resolutions."""

    work: np.ndarray
    mask: np.ndarray
    search: np.ndarray
    search_mask: np.ndarray
    scale: int


def prepare(image: np.ndarray) -> Prepared:
    """Reduce a (H, W) uint8 slice, H = W a multiple of 128, to the matching resolutions."""
    factor = image.shape[0] // WORK_SIDE
    work = _block_mean(image.astype(np.float32), factor)
    mask = body_mask(np.rint(work).astype(np.uint8))
    search = _block_mean(work, WORK_SIDE // SEARCH_SIDE)
    search_mask = _block_mean(mask.astype(np.float32), WORK_SIDE // SEARCH_SIDE) > 0.5
    return Prepared(work=work, mask=mask, search=search, search_mask=search_mask, scale=factor)


def search_spectra(prepared: Prepared, flip: bool) -> np.ndarray:
    """Return the spectra of ``prepared`` (mirrored if ``flip``) zoomed by every factor of :data:`SCALES`.

    Returns
    -------
    ndarray of shape (len(SCALES), SEARCH_SIDE, SEARCH_SIDE // 2 + 1), complex
        ``rfft2`` of each zoomed, mean-subtracted SEARCH_SIDE image.
    """
    image = prepared.search[:, ::-1] if flip else prepared.search
    zoomed = np.stack([_zoom(image, scale) for scale in SCALES])
    zoomed -= zoomed.mean(axis=(1, 2), keepdims=True)
    return np.fft.rfft2(zoomed)


def register(generated: Prepared, candidate_spectra: list, *, n_best: int = 1) -> list:
    """Find the candidates, zooms and translations that best map a real slice onto ``generated``.

    Phase correlation (the inverse transform of the whitened cross-power spectrum) is computed
    for every candidate and every zoom of :data:`SCALES` at SEARCH_SIDE resolution. Its highest
    value within :data:`MAX_SHIFT` pixels of zero is 1 for identical images and falls as the
    fine detail of the two images differs, so it ranks the candidates and picks each one's zoom.
    The translation is refined to sub-pixel precision by a parabola through the peak.

    Parameters
    ----------
    generated : Prepared
    candidate_spectra : list of ndarray
        :func:`search_spectra` of each candidate real slice.
    n_best : int, default=1
        Number of candidates returned, each with its best zoom.

    Returns
    -------
    list of (candidate, scale, dy, dx, peak)
        Best first: position in ``candidate_spectra``, zoom, translation in WORK_SIDE pixels,
        peak height.
    """
    target = generated.search - generated.search.mean()
    cross = np.fft.rfft2(target)[None, None] * np.conj(np.stack(candidate_spectra))
    magnitude = np.abs(cross)
    cross = np.divide(cross, magnitude, out=np.zeros_like(cross), where=magnitude > 0)
    surfaces = np.fft.irfft2(cross, s=target.shape)

    side = SEARCH_SIDE
    near = np.r_[0 : MAX_SHIFT + 1, side - MAX_SHIFT : side]
    window = surfaces[:, :, near][:, :, :, near]
    n_candidates, n_scales = window.shape[:2]
    flat = window.reshape(n_candidates, n_scales, -1)
    peaks = flat.argmax(axis=2)
    heights = flat.max(axis=2)

    factor = WORK_SIDE / SEARCH_SIDE
    results = []
    for candidate in np.argsort(-heights.max(axis=1), kind="stable")[:n_best]:
        scale_index = int(heights[candidate].argmax())
        i, j = np.unravel_index(peaks[candidate, scale_index], (near.size, near.size))
        dy, dx = _refine_peak(surfaces[candidate, scale_index], int(near[i]), int(near[j]))
        results.append((int(candidate), SCALES[scale_index], dy * factor, dx * factor,
                        float(heights[candidate, scale_index])))
    return results


def whole_similarity(generated: Prepared, real: Prepared, flip: bool, transform: tuple[float, float, float]):
    """Return (ssim, generated box) of ``real`` registered onto ``generated`` by ``transform``.

    ``transform`` is ``(scale, dy, dx)`` from :func:`register`.
    """
    scale, dy, dx = transform
    moving = real.work[:, ::-1] if flip else real.work
    moving_mask = real.mask[:, ::-1] if flip else real.mask
    aligned = _warp(moving, scale, dy, dx)
    aligned_mask = _warp(moving_mask.astype(np.float32), scale, dy, dx) > 0.5
    region = generated.mask | aligned_mask
    fitted = _fit_grey_levels(generated.work, [aligned], region)
    score = float(ssim_map(generated.work, fitted)[region].mean())
    return score, _box(generated.mask, generated.scale)


def local_similarity(generated: Prepared, candidates: list, tile: tuple[int, int, int], *, window: int,
                     min_detail: float, min_correlation: float):
    """Score the best-matching window near ``tile`` and return (score, candidate index, boxes).

    ``tile`` is ``(top, left, side)`` in WORK_SIDE pixels and ``candidates`` a list of Prepared
    real slices. Each candidate is compared in place and, when they differ, at the translation
    that phase correlation finds for the tile's neighbourhood (the tile plus ``window // 2`` on
    each side). Only windows of ``window`` pixels in that neighbourhood that lie inside both
    bodies, and whose fine detail has a standard deviation of at least ``min_detail`` grey
    levels in both slices, are compared. The candidate and translation with
    the highest Pearson correlation of the detail are kept; there a window's score is the
    smaller of that correlation and the window's mean SSIM, so that a copy needs matching fine
    structure and matching grey levels.

    Returns
    -------
    (score, candidate, generated box, real box)
        Boxes cover every window whose score reaches ``min_correlation`` (else the best window).
    """
    top, left, side = tile
    margin = window // 2
    y0, y1 = max(top - margin, 0), min(top + side + margin, WORK_SIDE)
    x0, x1 = max(left - margin, 0), min(left + side + margin, WORK_SIDE)
    target = generated.work[y0:y1, x0:x1]
    # Every map is computed on a crop around the neighbourhood: windows reach margin pixels
    # beyond it, and the detail filter another 4 sigma.
    pad = margin + int(4 * _DETAIL_SIGMA)
    crop = (slice(max(y0 - pad, 0), min(y1 + pad, WORK_SIDE)), slice(max(x0 - pad, 0), min(x1 + pad, WORK_SIDE)))
    origin = (crop[0].start, crop[1].start)
    neighbourhood = np.zeros_like(generated.mask[crop])
    neighbourhood[y0 - origin[0]:y1 - origin[0], x0 - origin[1]:x1 - origin[1]] = True
    work_g = generated.work[crop]
    detail_g = work_g - ndimage.gaussian_filter(work_g, _DETAIL_SIGMA)

    best = None
    for index, real in enumerate(candidates):
        moving = real.work[y0:y1, x0:x1]
        estimated = _phase_shift(target * _hann(target.shape), moving * _hann(moving.shape), max_shift=margin)
        for shift in dict.fromkeys([(0.0, 0.0), (round(estimated[0], 1), round(estimated[1], 1))]):
            aligned = ndimage.shift(real.work, shift, order=1, mode="nearest")[crop] if any(shift) else real.work[crop]
            aligned_mask = ndimage.shift(real.mask.astype(np.float32), shift, order=0, mode="nearest")[crop] > 0.5
            detail_r = aligned - ndimage.gaussian_filter(aligned, _DETAIL_SIGMA)
            both = generated.mask[crop] & aligned_mask
            correlation = _window_correlation(detail_g, detail_r, both, window, min_detail)
            correlation = np.where(neighbourhood, correlation, -1.0)
            if best is None or correlation.max() > best[0].max():
                best = (correlation, index, shift, aligned)

    correlation, index, (dy, dx), aligned = best
    structural = ndimage.uniform_filter(ssim_map(work_g, aligned), window, mode="constant")
    score = np.where(correlation > -1, np.minimum(correlation, structural), -1.0)
    top_score = float(score.max())
    hits = score >= min_correlation if top_score >= min_correlation else score == top_score
    box = _window_box(hits, window, generated.scale, origin)
    real_box = _shift_box(box, -dy * generated.scale, -dx * generated.scale, WORK_SIDE * generated.scale)
    return top_score, index, box, real_box


def blend_similarity(generated: Prepared, pairs: list):
    """Return (ssim, (weight_a, weight_b), pair index) of the best fit ``w_a * a + w_b * b + c``.

    ``pairs`` is a list of (a, b) Prepared slices. Each pair is fitted by least squares at
    SEARCH_SIDE resolution inside the union of the body masks. Only the pair with the smallest
    residual is fitted again and scored at WORK_SIDE resolution.
    """
    best, best_residual = 0, np.inf
    for index, (first, second) in enumerate(pairs):
        region = generated.search_mask | first.search_mask | second.search_mask
        _, residual = _least_squares(generated.search, [first.search, second.search], region)
        if residual < best_residual:
            best, best_residual = index, residual
    first, second = pairs[best]
    region = generated.mask | first.mask | second.mask
    weights, _ = _least_squares(generated.work, [first.work, second.work], region)
    fitted = np.clip(weights[0] * first.work + weights[1] * second.work + weights[2], 0, 255)
    score = float(ssim_map(generated.work, fitted)[region].mean())
    return score, (float(weights[0]), float(weights[1])), best


def body_box(prepared: Prepared) -> tuple[int, int, int, int]:
    """Return the bounding box (top, left, bottom, right) of the body, in working-size pixels."""
    return _box(prepared.mask, prepared.scale)


def ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the SSIM map of two grey-level images (0-255) with a Gaussian window, sigma 1.5 px."""
    x = x.astype(np.float32)
    y = y.astype(np.float32)

    def smooth(values):
        return ndimage.gaussian_filter(values, _SSIM_SIGMA, truncate=3.5)

    mean_x, mean_y = smooth(x), smooth(y)
    var_x = smooth(x * x) - mean_x**2
    var_y = smooth(y * y) - mean_y**2
    cov = smooth(x * y) - mean_x * mean_y
    numerator = (2 * mean_x * mean_y + _C1) * (2 * cov + _C2)
    return numerator / ((mean_x**2 + mean_y**2 + _C1) * (var_x + var_y + _C2))


def _block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    n_rows, n_cols = values.shape
    blocks = values.reshape(n_rows // factor, factor, n_cols // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def _zoom(image: np.ndarray, scale: float) -> np.ndarray:
    """Magnify ``image`` by ``scale`` about its centre (bilinear, edge values repeated outside)."""
    if scale == 1.0:
        return image
    centre = (np.asarray(image.shape) - 1) / 2
    return ndimage.affine_transform(
        image, np.diag([1 / scale, 1 / scale]), offset=centre - centre / scale, order=1, mode="nearest"
    )


def _warp(image: np.ndarray, scale: float, dy: float, dx: float) -> np.ndarray:
    """Zoom about the centre by ``scale``, then translate by (dy, dx), in one interpolation."""
    centre = (np.asarray(image.shape) - 1) / 2
    offset = centre - (centre + np.array([dy, dx])) / scale
    return ndimage.affine_transform(image, np.diag([1 / scale, 1 / scale]), offset=offset, order=1, mode="nearest")


def _phase_shift(target: np.ndarray, moving: np.ndarray, max_shift: int = MAX_SHIFT) -> tuple[float, float]:
    """Return the translation (dy, dx) that moves ``moving`` onto ``target``, to sub-pixel precision."""
    cross = np.fft.rfft2(target - target.mean()) * np.conj(np.fft.rfft2(moving - moving.mean()))
    magnitude = np.abs(cross)
    cross = np.divide(cross, magnitude, out=np.zeros_like(cross), where=magnitude > 0)
    surface = np.fft.irfft2(cross, s=target.shape)
    rows = np.r_[0 : max_shift + 1, target.shape[0] - max_shift : target.shape[0]]
    cols = np.r_[0 : max_shift + 1, target.shape[1] - max_shift : target.shape[1]]
    window = surface[np.ix_(rows, cols)]
    i, j = np.unravel_index(int(window.argmax()), window.shape)
    return _refine_peak(surface, int(rows[i]), int(cols[j]))


def _refine_peak(surface: np.ndarray, row: int, col: int) -> tuple[float, float]:
    """Return the signed sub-pixel position of the peak at (row, col) of a circular surface."""
    n_rows, n_cols = surface.shape
    dy = row + _parabola(surface[(row - 1) % n_rows, col], surface[row, col], surface[(row + 1) % n_rows, col])
    dx = col + _parabola(surface[row, (col - 1) % n_cols], surface[row, col], surface[row, (col + 1) % n_cols])
    dy = dy - n_rows if dy > n_rows / 2 else dy
    dx = dx - n_cols if dx > n_cols / 2 else dx
    return float(dy), float(dx)


def _parabola(left: float, centre: float, right: float) -> float:
    """Return the offset in (-0.5, 0.5) of the vertex of the parabola through three samples."""
    curvature = left - 2 * centre + right
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def _hann(shape) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)


def _least_squares(target, sources, region):
    """Fit ``target`` by a linear combination of ``sources`` plus a constant inside ``region``.

    Solves the normal equations, which for at most three unknowns on grey levels stay well
    within float64 precision. Returns the weights (one per source, then the constant) and the
    residual sum of squares. A singular system (a constant source) gets its least-norm solution.
    """
    design = np.stack([source[region] for source in sources] + [np.ones(int(region.sum()), dtype=np.float32)])
    design = design.astype(np.float64)
    values = target[region].astype(np.float64)
    gram = np.einsum("in,jn->ij", design, design)
    weights = np.linalg.pinv(gram) @ np.einsum("in,n->i", design, values)
    residual = values - weights @ design
    return weights, float(residual @ residual)


def _fit_grey_levels(target: np.ndarray, sources: list, region: np.ndarray) -> np.ndarray:
    """Least-squares fit of ``target`` by ``a * source + b`` inside ``region``, clipped to 0-255."""
    weights, _ = _least_squares(target, sources, region)
    fitted = sum(weight * source for weight, source in zip(weights[:-1], sources)) + weights[-1]
    return np.clip(fitted, 0, 255)


def _window_correlation(x, y, mask, window, min_detail):
    """Pearson correlation of ``x`` and ``y`` in every ``window`` square; -1 where not comparable."""

    def mean(values):
        return ndimage.uniform_filter(values.astype(np.float32), window, mode="constant")

    mean_x, mean_y = mean(x), mean(y)
    var_x = mean(x * x) - mean_x**2
    var_y = mean(y * y) - mean_y**2
    cov = mean(x * y) - mean_x * mean_y
    inside = mean(mask) >= 0.999
    comparable = inside & (var_x >= min_detail**2) & (var_y >= min_detail**2)
    denominator = np.sqrt(np.where(comparable, var_x * var_y, 1.0))
    return np.where(comparable, cov / denominator, -1.0)


def _window_box(hits, window, scale, origin=(0, 0)):
    """Bounding box, in working-size pixels, of every window centred on a ``True`` of ``hits``.

    ``hits`` may be a crop whose top-left pixel is ``origin`` in WORK_SIDE pixels.
    """
    rows, cols = np.nonzero(hits)
    half = window // 2
    top = max(int(rows.min()) + origin[0] - half, 0)
    left = max(int(cols.min()) + origin[1] - half, 0)
    bottom = min(int(rows.max()) + origin[0] - half + window, WORK_SIDE)
    right = min(int(cols.max()) + origin[1] - half + window, WORK_SIDE)
    return (top * scale, left * scale, bottom * scale, right * scale)


def _shift_box(box, dy, dx, limit):
    top, left, bottom, right = box
    clip = lambda value: int(np.clip(round(value), 0, limit))  # noqa: E731
    return (clip(top + dy), clip(left + dx), clip(bottom + dy), clip(right + dx))


def _box(mask, scale):
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0, 0, WORK_SIDE * scale, WORK_SIDE * scale)
    return (int(rows[0]) * scale, int(cols[0]) * scale, (int(rows[-1]) + 1) * scale, (int(cols[-1]) + 1) * scale)
