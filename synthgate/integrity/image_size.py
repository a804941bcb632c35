"""Integrity: every image already has the working size, so no resampling changed its pixels."""

from __future__ import annotations

from ..result import CheckResult, Evidence
from .decodable import MAX_LISTED_FILES, _relative

__all__ = ["compute_image_size", "STATISTICS"]

STATISTICS = {
    "resized_files": "images that were not of the working size and were resized; higher is worse",
    "resized_share": "resized_files / usable images; higher is worse",
}


def compute_image_size(image_set) -> CheckResult:
    """Count the images of one set whose stored size differs from the working size.

    Such images were resized with an antialiasing filter before every other check, which
    changes their texture statistics; the evidence lists each one with its stored size.

    Parameters
    ----------
    image_set : synthgate.dataset.ImageSet
        A loaded set.

    Returns
    -------
    CheckResult
        ``resized_files`` and ``resized_share``; the evidence table lists up to 50 files.
    """
    resized = [
        (path, info) for path, info in zip(image_set.paths, image_set.infos) if info.resized
    ]
    rows = tuple(
        {"file": _relative(path, image_set.root), "stored size": f"{info.width}x{info.height}"}
        for path, info in resized[:MAX_LISTED_FILES]
    )
    n_images = len(image_set)
    return CheckResult(
        check="image_size",
        statistic="resized_files",
        statistics={"resized_files": float(len(resized)), "resized_share": len(resized) / n_images},
        n_real=n_images if image_set.role != "generated" else 0,
        n_generated=n_images if image_set.role == "generated" else 0,
        params={"role": image_set.role, "working_size": list(image_set.size), "listed": len(rows)},
        evidence=Evidence(table=rows),
    )
