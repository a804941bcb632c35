"""The ``intensity`` extractor: whole-slice grey-level summary for the integrity manifest."""

from __future__ import annotations

import numpy as np

from .body_mask import BODY_MASK_VERSION, body_masks, check_image_stack

__all__ = ["IntensityExtractor"]


class IntensityExtractor:
    """Mean and standard deviation of all pixels, and the share of pixels inside the body.

    These are the per-image numbers of the integrity manifest: they catch a slice in another
    window, an inverted slice or a mostly empty slice without judging texture.

    Attributes
    ----------
    name : str
        ``"intensity"``, the registry name.
    version : int
        Bumped whenever the output for the same input and params changes.
    params : dict
        The body-mask version; part of the cache namespace.
    feature_names : tuple of str
        ``mean_intensity``, ``std_intensity`` (grey levels 0-255) and ``body_fraction`` (0-1).
    """

    name = "intensity"
    version = 1
    feature_names = ("mean_intensity", "std_intensity", "body_fraction")

    def __init__(self):
        self.params = {"body_mask_version": BODY_MASK_VERSION}

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Map ``images`` of shape (n, H, W), uint8, to an array of shape (n, 3), float64."""
        images = check_image_stack(images)
        n_images, height, width = images.shape
        if n_images == 0:
            return np.empty((0, len(self.feature_names)))
        pixels = images.reshape(n_images, height * width).astype(np.float64)
        masks = body_masks(images).reshape(n_images, height * width)
        return np.column_stack([pixels.mean(axis=1), pixels.std(axis=1), masks.mean(axis=1)])
