"""The per-image manifest: one row per file that matched the pattern, usable or not.

The manifest is what the integrity contract validates with Great Expectations. It contains the
facts a data steward checks before anything statistical: format, size, decodability, content
hash and a grey-level summary.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

__all__ = ["MANIFEST_COLUMNS", "build_manifest"]

MANIFEST_COLUMNS = (
    "path",
    "set",
    "width",
    "height",
    "png_mode",
    "bit_depth",
    "palette_is_grey",
    "mean_intensity",
    "std_intensity",
    "body_fraction",
    "sha256",
    "decodable",
    "reason",
)


def build_manifest(image_set, intensity: np.ndarray) -> pd.DataFrame:
    """Build the manifest of one image set.

    Parameters
    ----------
    image_set : synthgate.dataset.ImageSet
        A loaded set; its usable images come first, then its failures.
    intensity : ndarray of shape (len(image_set), 3)
        ``mean_intensity``, ``std_intensity`` (grey levels 0-255) and ``body_fraction`` of each
        usable image, from the ``intensity`` extractor.

    Returns
    -------
    pandas.DataFrame
        One row per file with the columns of :data:`MANIFEST_COLUMNS`. Files that are not
        usable have ``decodable`` False, their reason, and missing values (NaN or None) where
        nothing could be measured. ``palette_is_grey`` is None for images that are not
        palette-mode.
    """
    if intensity.shape != (len(image_set), 3):
        raise ValueError(f"intensity must have shape ({len(image_set)}, 3); got {intensity.shape}")

    rows = []
    for path, file_hash, info, values in zip(image_set.paths, image_set.file_sha256, image_set.infos, intensity):
        rows.append(
            {
                "path": _relative(path, image_set.root),
                "set": image_set.role,
                "width": info.width,
                "height": info.height,
                "png_mode": info.mode,
                "bit_depth": info.bit_depth,
                "palette_is_grey": (info.conversion == "palette") if info.mode == "P" else None,
                "mean_intensity": float(values[0]),
                "std_intensity": float(values[1]),
                "body_fraction": float(values[2]),
                "sha256": file_hash,
                "decodable": True,
                "reason": "",
            }
        )
    for failure in image_set.failures:
        rows.append(
            {
                "path": _relative(failure.path, image_set.root),
                "set": image_set.role,
                "width": np.nan,
                "height": np.nan,
                "png_mode": None,
                "bit_depth": np.nan,
                "palette_is_grey": None,
                "mean_intensity": np.nan,
                "std_intensity": np.nan,
                "body_fraction": np.nan,
                "sha256": _file_sha256(failure.path),
                "decodable": False,
                "reason": failure.reason,
            }
        )
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def _relative(path, root):
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _file_sha256(path):
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
