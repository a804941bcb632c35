"""Integrity: every image already has the working size, so no resampling changed its pixels."""

from __future__ import annotations

from ..result import CheckResult
from .contract import STATISTICS, validate_rows

__all__ = ["compute_image_size", "STATISTICS"]


def compute_image_size(image_set, *, manifest) -> CheckResult:
    """Count the usable images of one set whose stored size differs from the working size.

    Such images were resized with an antialiasing filter before every other check, which
    changes their texture statistics. The evidence lists each one with its stored size.

    Parameters
    ----------
    image_set : synthgate.dataset.ImageSet
        A loaded set; ``image_set.size`` is the working size (height, width).
    manifest : pandas.DataFrame
        Its manifest (:func:`synthgate.manifest.build_manifest`).

    Returns
    -------
    CheckResult
        ``unexpected_count`` (resized images) and ``unexpected_share`` (of usable images); the
        evidence table lists up to 50 files with their stored size as ``WIDTHxHEIGHT``.
    """
    import great_expectations as gx

    height, width = image_set.size
    rows = manifest[manifest["decodable"]].copy()
    rows["stored_size"] = [f"{int(w)}x{int(h)}" for w, h in zip(rows["width"], rows["height"])]
    expectation = gx.expectations.ExpectColumnValuesToBeInSet(column="stored_size", value_set=[f"{width}x{height}"])
    return validate_rows(
        "image_size", image_set, rows, expectation, "stored_size", {"working_size": f"{width}x{height}"}
    )
