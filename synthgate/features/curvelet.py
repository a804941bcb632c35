"""The ``curvelet`` extractor: band energies and sparsity of the uniform discrete curvelet transform.

Curvelets are oriented, elongated band-pass filters, so their coefficients describe texture by
scale (fineness) and direction (orientation), and they respond to edges along curves, such as
vessel walls, fissures and the body outline. A generator that blurs, over-sharpens or favours some
orientations changes the energy of some bands and how concentrated (sparse) their coefficients
are. The transform is ``curvelets.numpy.UDCT`` (PyPI package ``curvelets``), a tight frame, so
the band energies add up to the energy of the slice.
"""

from __future__ import annotations

import numpy as np
from curvelets.numpy import UDCT

from .body_mask import BODY_MASK_VERSION, body_masks, check_image_stack, raise_degenerate_rows

__all__ = ["CurveletExtractor"]

STATISTICS = ("log_energy", "sparsity")


class CurveletExtractor:
    r"""Log energy and Hoyer sparsity of each curvelet band, one float64 row per slice.

    Each slice is multiplied by its body mask (:func:`~synthgate.features.body_mask.body_mask`)
    and transformed with the real uniform discrete curvelet transform (UDCT) of Nguyen and
    Chauris (2010), with ``scales`` curvelet scales above the low-pass band and ``directions``
    directions at every scale. The low-pass band is not used. For band :math:`b` with
    coefficients :math:`c_1 .. c_n`:

    * ``log_energy`` is :math:`\log_{10}(\frac{1}{n} \sum |c_i|^2)`, the mean power of the band
      in grey levels squared (log10);
    * ``sparsity`` is Hoyer's measure
      :math:`(\sqrt n - \lVert c \rVert_1 / \lVert c \rVert_2) / (\sqrt n - 1)`: 0 when all
      coefficients have the same magnitude, 1 when one coefficient has all the energy.

    Scale 1 is the coarsest curvelet scale. With the defaults on 256x256 slices the power of
    scales 1, 2 and 3 is centred at about 0.11, 0.22 and 0.44 cycles per pixel. Directions are
    numbered 1 .. ``directions`` in increasing angle of the band's frequency vector, from 0 to
    180 degrees (0 degrees is horizontal frequency, that is vertical edges). ``angles`` contains
    the angle of every band.

    Parameters
    ----------
    scales : int, default=3
        Number of curvelet scales, 1-5.
    directions : int, default=12
        Directions per scale, a multiple of 6 from 6 to 48 (the UDCT needs a multiple of 3
        wedges in each of its two angular families).
    shape : (int, int), default=(256, 256)
        ``(height, width)`` of the slices; ``transform`` rejects other shapes.

    Attributes
    ----------
    name : str
        ``"curvelet"``, the registry name.
    version : int
        Bumped whenever the output for the same input and params changes.
    params : dict
        The effective params, including the body-mask version; part of the cache namespace.
    feature_names : tuple of str
        ``curvelet_s<scale>_d<direction>_<statistic>``, for example
        ``curvelet_s3_d07_log_energy``, scale by scale, direction by direction.
    angles : ndarray of shape (scales, directions), float64
        Angle in degrees (0-180) of the energy-weighted mean frequency vector of every band.

    Notes
    -----
    Takes 5-7 ms per 256x256 slice with the defaults: the transform 3.5-5 ms, the body mask
    about 1 ms (one core of a 2-core x86 VM that was running other jobs, curvelets 1.2). A
    slice whose masked image has a band with zero energy raises
    :class:`~synthgate.errors.DegenerateInputError`, because its log energy and sparsity are
    undefined.

    References
    ----------
    Nguyen, T. T., & Chauris, H. (2010). Uniform discrete curvelet transform. IEEE Transactions
    on Signal Processing, 58(7), 3618-3634. :doi:`10.1109/TSP.2010.2047666`

    Hoyer, P. O. (2004). Non-negative matrix factorization with sparseness constraints. Journal
    of Machine Learning Research, 5, 1457-1469.
    """

    name = "curvelet"
    version = 1

    def __init__(self, *, scales: int = 3, directions: int = 12, shape=(256, 256)):
        if isinstance(scales, bool) or not isinstance(scales, (int, np.integer)) or not 1 <= scales <= 5:
            raise ValueError(f"scales must be an integer in 1-5; got {scales!r}")
        if (
            isinstance(directions, bool)
            or not isinstance(directions, (int, np.integer))
            or directions % 6
            or not 6 <= directions <= 48
        ):
            raise ValueError(f"directions must be a multiple of 6 from 6 to 48; got {directions!r}")
        if (
            not isinstance(shape, (tuple, list))
            or len(shape) != 2
            or any(isinstance(side, bool) or not isinstance(side, (int, np.integer)) for side in shape)
            or any(side < 2 ** (scales + 3) for side in shape)
        ):
            raise ValueError(
                f"shape must be (height, width) with integers >= 2 ** (scales + 3) = {2 ** (scales + 3)}; got {shape!r}"
            )

        self.scales = int(scales)
        self.directions = int(directions)
        self.shape = (int(shape[0]), int(shape[1]))
        wedges = self.directions // 2
        self._transform = UDCT(
            shape=self.shape, angular_wedges_config=np.full((self.scales, 2), wedges), transform_kind="real"
        )
        self.angles, self._order = _band_angles(self._transform, self.scales)
        self.params = {
            "scales": self.scales,
            "directions": self.directions,
            "shape": list(self.shape),
            "transform": "UDCT real, curvelets.numpy",
            "body_mask_version": BODY_MASK_VERSION,
        }
        self.feature_names = tuple(
            f"curvelet_s{scale}_d{direction:02d}_{statistic}"
            for scale in range(1, self.scales + 1)
            for direction in range(1, self.directions + 1)
            for statistic in STATISTICS
        )

    def __repr__(self) -> str:
        return f"CurveletExtractor(scales={self.scales}, directions={self.directions}, shape={self.shape})"

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Extract the curvelet features of every slice.

        Parameters
        ----------
        images : ndarray of shape (n, H, W), uint8
            Slices of the extractor's ``shape``, grey levels 0-255. ``n`` may be 0.

        Returns
        -------
        ndarray of shape (n, len(feature_names)), float64
            One row per slice, all finite. Each row depends on its own slice only.

        Raises
        ------
        ValueError
            If ``images`` is not a 3-D uint8 stack of the extractor's shape.
        DegenerateInputError
            If a slice has no body, or a band of its masked image has zero energy.
        """
        images = check_image_stack(images)
        if images.shape[1:] != self.shape:
            raise ValueError(
                f"images must have shape (n, {self.shape[0]}, {self.shape[1]}); got {images.shape}; "
                "build the extractor with shape=(height, width)"
            )
        features = np.empty((len(images), len(self.feature_names)))
        if len(images) == 0:
            return features

        masks = body_masks(images)
        raise_degenerate_rows(~masks.any(axis=(1, 2)), "has no body: no pixel reaches the body-mask threshold")

        zero_band = np.zeros(len(images), dtype=bool)
        for row, (image, mask) in enumerate(zip(images, masks)):
            coefficients = self._transform.forward(np.where(mask, image, 0).astype(np.float64))
            values = features[row].reshape(self.scales, self.directions, len(STATISTICS))
            for scale in range(self.scales):
                bands = [band for family in coefficients[scale + 1] for band in family]
                for direction, band_index in enumerate(self._order[scale]):
                    magnitude = np.abs(bands[band_index]).ravel()
                    energy = np.dot(magnitude, magnitude)
                    if energy == 0:
                        zero_band[row] = True
                        continue
                    root_n = np.sqrt(magnitude.size)
                    values[scale, direction, 0] = np.log10(energy / magnitude.size)
                    values[scale, direction, 1] = (root_n - magnitude.sum() / np.sqrt(energy)) / (root_n - 1)

        raise_degenerate_rows(zero_band, "has a curvelet band with zero energy, so its log energy is undefined")
        return features


def _band_angles(transform: UDCT, scales: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return the angle (degrees) of each band, sorted per scale, and the sort order of the bands.

    The angle of a band is that of the mean of the doubled angle of its frequency window,
    weighted by the squared window, so a window that straddles 0/180 degrees gets the right
    axial mean.
    """
    angles = []
    order = []
    for scale in range(scales):
        scale_angles = []
        for family in transform.windows[scale + 1]:
            for window in family:
                rows, cols = np.unravel_index(window.indices, window.shape)
                frequency_y = np.fft.fftfreq(window.shape[0])[rows]
                frequency_x = np.fft.fftfreq(window.shape[1])[cols]
                weight = np.asarray(window.values, dtype=np.float64) ** 2
                doubled = np.sum(weight * np.exp(2j * np.arctan2(frequency_y, frequency_x)))
                scale_angles.append(np.degrees(np.angle(doubled)) / 2 % 180)
        scale_angles = np.asarray(scale_angles)
        sort = np.argsort(scale_angles, kind="stable")
        order.append(sort)
        angles.append(scale_angles[sort])
    return np.asarray(angles), order
