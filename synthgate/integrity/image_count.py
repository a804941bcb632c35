"""Integrity: the set holds the number of usable images that the dataset promises."""

from __future__ import annotations

from ..result import CheckResult

__all__ = ["compute_image_count", "STATISTICS"]

STATISTICS = {
    "count_error": "|usable images - expected count|; higher is worse",
    "count": "usable images found (informational)",
}


def compute_image_count(image_set, *, expected: int) -> CheckResult:
    """Compare the number of usable images in one set with ``expected``.

    Parameters
    ----------
    image_set : synthgate.dataset.ImageSet
        A loaded set; files that failed to decode do not count.
    expected : int
        The count the dataset configuration promises (``expected_counts`` in thresholds.toml).

    Returns
    -------
    CheckResult
        ``count`` and ``count_error`` (absolute difference).
    """
    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 1:
        raise ValueError(f"expected must be a positive integer; got {expected!r}")
    count = len(image_set)
    return CheckResult(
        check="image_count",
        statistic="count_error",
        statistics={"count_error": float(abs(count - expected)), "count": float(count)},
        n_real=count if image_set.role != "generated" else 0,
        n_generated=count if image_set.role == "generated" else 0,
        params={"role": image_set.role, "expected": expected},
    )
