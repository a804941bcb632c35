"""The patient's body in an 8-bit lung-window CT slice.

Both feature extractors and later checks restrict their statistics to this mask. The air
around the patient and the padding outside the scanner's field of view then do not count as
image content, and neither does the scanner table unless it touches the body.

The mask is built in four steps:

1. Threshold: pixels with grey level ``>= threshold`` are tissue. The default 128 assumes a
   lung window of centre -600 HU and width 1500 HU, where 128 is about -600 HU. Air (about
   60) and field-of-view padding (0) fall below it, fat (about 210) and soft tissue (about
   236) lie above it. Lung parenchyma (about 70-100) also falls below and is added back in
   step 4.
2. Connected components of the tissue pixels (4-connectivity).
3. Keep the largest component, the body. A table or arm that touches the body in the slice
   stays in the mask.
4. Fill holes: every background region (4-connectivity) that does not touch the image border
   is added, so the lungs and the trachea become part of the body. A lung that is open to
   the outside air in the slice is not filled.

A slice with no pixel at or above ``threshold`` has no body: the mask is then all ``False``.
The functions here return that empty mask rather than raising, so that callers can name the
offending row in their own :class:`~synthgate.errors.DegenerateInputError`.

The module also contains the input check and the error helper that the extractors share.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import DegenerateInputError

__all__ = ["BODY_MASK_VERSION", "body_mask", "body_masks", "check_image_stack", "raise_degenerate_rows"]

# Bump when the algorithm or its default threshold changes. The extractors put it in their
# params, so cached features computed with an older mask are not reused.
BODY_MASK_VERSION = 1
# Lowest grey level counted as tissue: about -600 HU in the lung window (centre -600, width 1500).
BODY_THRESHOLD = 128


def body_mask(image: np.ndarray, *, threshold: int = BODY_THRESHOLD) -> np.ndarray:
    """Segment the patient's body in one slice.

    Parameters
    ----------
    image : ndarray of shape (H, W), uint8
        One lung-window slice, grey levels 0-255.
    threshold : int, default=128
        Lowest grey level counted as tissue, in 1-255.

    Returns
    -------
    ndarray of shape (H, W), bool
        ``True`` inside the body, lungs included. All ``False`` when no pixel reaches
        ``threshold`` (a slice with no body).

    Raises
    ------
    ValueError
        If ``image`` is not a 2-D uint8 array or ``threshold`` is outside 1-255.

    Notes
    -----
    Takes about 0.9 ms per 256x256 slice (measured on one core of a 2-core x86 VM).
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(
            f"image must be a 2-D uint8 array; got shape={image.shape}, dtype={image.dtype}"
        )
    _check_threshold(threshold)
    return _body_mask(image, threshold)


def body_masks(images: np.ndarray, *, threshold: int = BODY_THRESHOLD) -> np.ndarray:
    """Segment the body in every slice of a stack; see :func:`body_mask`.

    Parameters
    ----------
    images : ndarray of shape (n, H, W), uint8
        Lung-window slices, grey levels 0-255.
    threshold : int, default=128
        Lowest grey level counted as tissue, in 1-255.

    Returns
    -------
    ndarray of shape (n, H, W), bool
        One mask per slice; a slice with no body gets an all-``False`` mask.
    """
    images = check_image_stack(images)
    _check_threshold(threshold)

    masks = np.empty(images.shape, dtype=bool)
    for row, image in enumerate(images):
        masks[row] = _body_mask(image, threshold)
    return masks


def check_image_stack(images) -> np.ndarray:
    """Return ``images`` as an ndarray after checking that it is an (n, H, W) uint8 stack.

    Raises
    ------
    ValueError
        If ``images`` is not 3-D, not uint8, or has an empty height or width.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"images must be a 3-D uint8 array (n, H, W); got shape={images.shape}, dtype={images.dtype}"
        )
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"images must have a non-empty height and width; got shape={images.shape}")
    return images


def raise_degenerate_rows(is_degenerate: np.ndarray, reason: str) -> None:
    """Raise a :class:`DegenerateInputError` naming the rows flagged in ``is_degenerate``, if any.

    The message lists up to 10 row indices followed by ``reason``. The error gets two extra
    attributes, ``rows`` (every flagged index, as ints) and ``reason``, so that a caller that
    knows the files behind the rows can name them.
    """
    rows = np.flatnonzero(is_degenerate)
    if rows.size == 0:
        return
    shown = ", ".join(str(row) for row in rows[:10])
    more = f" and {rows.size - 10} more" if rows.size > 10 else ""
    noun = "row" if rows.size == 1 else "rows"
    error = DegenerateInputError(f"{noun} {shown}{more}: the image {reason}")
    error.rows = tuple(int(row) for row in rows)
    error.reason = reason
    raise error


def _check_threshold(threshold) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or not 1 <= threshold <= 255:
        raise ValueError(f"threshold must be an integer in 1-255; got {threshold!r}")


def _body_mask(image: np.ndarray, threshold: int) -> np.ndarray:
    tissue = image >= threshold

    labels, n_components = ndimage.label(tissue)
    if n_components == 0:
        return tissue
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == sizes.argmax()

    # Fill holes: a background region is outside the body exactly when it touches the border.
    # Labelling the complement once made the whole mask about twice as fast (0.9 ms against
    # 1.6 ms per 256x256 slice) as ndimage.binary_fill_holes, with the same result.
    background, _ = ndimage.label(~body)
    border_labels = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    is_outside = np.zeros(background.max() + 1, dtype=bool)
    is_outside[border_labels] = True
    is_outside[0] = False
    return ~is_outside[background]
