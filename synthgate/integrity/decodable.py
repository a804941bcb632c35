"""Integrity: every file that matched the pattern decodes to a usable image."""

from __future__ import annotations

from ..result import CheckResult, Evidence

__all__ = ["compute_decodable", "STATISTICS"]

STATISTICS = {
    "failed_files": "files that could not be used (undecodable or constant); higher is worse",
    "failed_share": "failed_files / files found; higher is worse",
}

MAX_LISTED_FILES = 50


def compute_decodable(image_set) -> CheckResult:
    """Count the files of one set that could not be decoded or hold a constant image.

    Parameters
    ----------
    image_set : synthgate.dataset.ImageSet
        A loaded set; its ``failures`` are the files that were excluded from every other check.

    Returns
    -------
    CheckResult
        ``failed_files`` and ``failed_share``; the evidence table lists up to 50 failed files
        with the reason, and ``params["listed"]`` says how many are listed.
    """
    n_failed = len(image_set.failures)
    n_found = len(image_set) + n_failed
    rows = tuple(
        {"file": _relative(failure.path, image_set.root), "reason": failure.reason}
        for failure in image_set.failures[:MAX_LISTED_FILES]
    )
    return CheckResult(
        check="decodable",
        statistic="failed_files",
        statistics={"failed_files": float(n_failed), "failed_share": n_failed / n_found if n_found else 0.0},
        n_real=n_found if image_set.role != "generated" else 0,
        n_generated=n_found if image_set.role == "generated" else 0,
        params={"role": image_set.role, "listed": len(rows), "files_found": n_found},
        evidence=Evidence(table=rows),
    )


def _relative(path, root):
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
