"""Integrity: every file that matched the pattern decodes to a usable image."""

from __future__ import annotations

from ..result import CheckResult
from .contract import STATISTICS, validate_rows

__all__ = ["compute_decodable", "STATISTICS"]


def compute_decodable(image_set, *, manifest) -> CheckResult:
    """Count the files of one set that could not be decoded or hold no usable slice.

    A file is unusable when it does not decode (corrupt, truncated, empty, not an image, too
    large), when every pixel is equal, or when no pixel reaches soft tissue. Such files are
    excluded from every other check, so this check names each one with its reason.

    Parameters
    ----------
    image_set : synthgate.dataset.ImageSet
        A loaded set.
    manifest : pandas.DataFrame
        Its manifest (:func:`synthgate.manifest.build_manifest`), one row per file found.

    Returns
    -------
    CheckResult
        ``unexpected_count`` (unusable files) and ``unexpected_share`` (of files found); the
        evidence table lists up to 50 files with the reason.
    """
    import great_expectations as gx

    expectation = gx.expectations.ExpectColumnValuesToBeInSet(column="decodable", value_set=[True])
    return validate_rows("decodable", image_set, manifest, expectation, "reason", {})
