"""Multi-scale structural similarity (MS-SSIM) of two grey-level images, built on scikit-image's SSIM.

MS-SSIM (Wang, Simoncelli and Bovik, 2003) compares two images at several resolutions: the
contrast and structure terms at every scale, and the luminance term only at the coarsest one.
scikit-image implements single-scale SSIM only, so this module calls
``skimage.metrics.structural_similarity`` at each scale, with the settings of Wang et al.:
an 11-tap Gaussian window of sigma 1.5, population covariances, ``K1 = 0.01``, ``K2 = 0.03``
and an explicit ``data_range``. The contrast-structure term of a scale is the SSIM map divided
by the luminance map, averaged over the same pixels that scikit-image averages. Between scales
each image is reduced by averaging 2x2 blocks, as Wang's reference MATLAB code does.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

__all__ = ["ms_ssim", "ms_ssim_components", "combine_terms", "MS_SSIM_WEIGHTS"]

# Exponents of the five scales, finest first, from Wang, Simoncelli & Bovik (2003), Section 3.2.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# SSIM settings of Wang et al. (2004), as scikit-image documents for reproducing them.
_SIGMA = 1.5
_TRUNCATE = 3.5
_K1 = 0.01
_K2 = 0.03
_WINDOW = 2 * int(_TRUNCATE * _SIGMA + 0.5) + 1


def ms_ssim_components(image_a, image_b, *, data_range, n_scales=5) -> np.ndarray:
    """Return the per-scale terms of MS-SSIM: contrast-structure at each scale, full SSIM at the last.

    Parameters
    ----------
    image_a, image_b : ndarray of shape (H, W)
        Two grey-level images of the same shape with non-negative values, any real dtype (for
        example uint8, grey levels 0-255). ``H`` and ``W`` must be divisible by ``2 ** (n_scales - 1)``, and the
        coarsest scale must be at least 11 pixels on each side (the Gaussian window).
    data_range : float
        Distance between the smallest and largest possible value (255 for 8-bit images). It
        sets the stabilising constants ``(0.01 * data_range) ** 2`` and
        ``(0.03 * data_range) ** 2``, so it is required rather than guessed from the dtype.
    n_scales : int, default=5
        Number of scales, 1-5.

    Returns
    -------
    ndarray of shape (n_scales,), float64
        Terms in [-1, 1], finest scale first: the mean contrast-structure term at scales
        1 .. n_scales-1 and the mean SSIM (luminance x contrast-structure) at the last scale.
        They can be negative for anti-correlated images.

    Raises
    ------
    ValueError
        If the images are not 2-D with the same shape, hold negative or non-finite values, the
        shape does not suit ``n_scales``, or ``data_range`` is not a positive finite number.
    """
    image_a = np.asarray(image_a)
    image_b = np.asarray(image_b)
    if image_a.ndim != 2 or image_a.shape != image_b.shape:
        raise ValueError(
            f"image_a and image_b must be 2-D arrays of the same shape; got {image_a.shape} and {image_b.shape}"
        )
    for image, name in ((image_a, "image_a"), (image_b, "image_b")):
        if image.dtype.kind not in "biuf" or not np.all(np.isfinite(image)) or image.min() < 0:
            raise ValueError(f"{name} must hold finite, non-negative real values; got dtype {image.dtype}, "
                             f"minimum {image.min() if image.size else None}")
    if isinstance(n_scales, bool) or not isinstance(n_scales, (int, np.integer)) or not 1 <= n_scales <= 5:
        raise ValueError(f"n_scales must be an integer in 1-5; got {n_scales!r}")
    factor = 2 ** (n_scales - 1)
    if any(side % factor or side // factor < _WINDOW for side in image_a.shape):
        raise ValueError(
            f"image sides must be divisible by 2 ** (n_scales - 1) = {factor} and at least "
            f"{_WINDOW * factor} pixels for n_scales={n_scales}; got shape {image_a.shape}"
        )
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.number)) or not (
        np.isfinite(data_range) and data_range > 0
    ):
        raise ValueError(f"data_range must be a positive finite number such as 255; got {data_range!r}")

    x = image_a.astype(np.float64)
    y = image_b.astype(np.float64)
    c1 = (_K1 * data_range) ** 2
    pad = (_WINDOW - 1) // 2
    terms = np.empty(n_scales)
    for scale in range(n_scales):
        options = dict(
            data_range=data_range, gaussian_weights=True, sigma=_SIGMA, use_sample_covariance=False, K1=_K1, K2=_K2
        )
        if scale == n_scales - 1:
            terms[scale] = structural_similarity(x, y, **options)
            break

        _, ssim_map = structural_similarity(x, y, full=True, **options)
        # The luminance map uses the same Gaussian filter as scikit-image's SSIM. It is positive
        # because c1 > 0 and the images are non-negative, so dividing it out of the SSIM map
        # leaves the contrast-structure map.
        mean_x = ndimage.gaussian_filter(x, _SIGMA, truncate=_TRUNCATE, mode="reflect")
        mean_y = ndimage.gaussian_filter(y, _SIGMA, truncate=_TRUNCATE, mode="reflect")
        luminance = (2 * mean_x * mean_y + c1) / (mean_x**2 + mean_y**2 + c1)
        terms[scale] = (ssim_map / luminance)[pad:-pad, pad:-pad].mean(dtype=np.float64)
        x = _halve(x)
        y = _halve(y)
    return terms


def ms_ssim(image_a, image_b, *, data_range, weights=MS_SSIM_WEIGHTS) -> float:
    r"""Compute the MS-SSIM of two grey-level images; 1 for identical images, higher is more similar.

    .. math:: \mathrm{MS\text{-}SSIM} = \mathrm{SSIM}_M^{\,w_M} \prod_{j=1}^{M-1} \mathrm{cs}_j^{\,w_j},

    with :math:`\mathrm{cs}_j` the mean contrast-structure term at scale :math:`j` (finest
    first), :math:`\mathrm{SSIM}_M` the mean SSIM at the coarsest scale and the weights of
    Wang et al. (2003), which sum to 1.

    Parameters
    ----------
    image_a, image_b : ndarray of shape (H, W)
        Two grey-level images of the same shape; see :func:`ms_ssim_components`. With the
        default five scales both sides must be multiples of 16 and at least 176 pixels.
    data_range : float
        Distance between the smallest and largest possible value, 255 for 8-bit images.
    weights : sequence of float, default=MS_SSIM_WEIGHTS
        Exponent of each scale, finest first; its length sets the number of scales (1-5).
        Each must be non-negative.

    Returns
    -------
    float
        MS-SSIM in [0, 1]. A negative term (anti-correlated structure at that scale) has no
        real fractional power, so it is set to 0 before the product, and the result is then 0.

    Raises
    ------
    ValueError
        For malformed images, ``data_range`` or ``weights``.

    References
    ----------
    Wang, Z., Simoncelli, E. P., & Bovik, A. C. (2003). Multiscale structural similarity for
    image quality assessment. Thirty-Seventh Asilomar Conference on Signals, Systems and
    Computers, 1398-1402. :doi:`10.1109/ACSSC.2003.1292216`
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or not 1 <= weights.size <= 5 or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"weights must be 1 to 5 non-negative finite numbers; got {weights.tolist()!r}")
    terms = ms_ssim_components(image_a, image_b, data_range=data_range, n_scales=weights.size)
    return combine_terms(terms, weights)


def combine_terms(terms, weights=MS_SSIM_WEIGHTS) -> float:
    """Combine per-scale terms from :func:`ms_ssim_components` into MS-SSIM (negative terms count as 0)."""
    return float(np.prod(np.maximum(np.asarray(terms, dtype=np.float64), 0.0) ** np.asarray(weights)))


def _halve(image: np.ndarray) -> np.ndarray:
    """Average non-overlapping 2x2 blocks (both sides even)."""
    height, width = image.shape
    return image.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
