"""Integrity: the set contains the number of usable images that the dataset promises."""

from __future__ import annotations

from ..result import CheckResult

__all__ = ["compute_image_count", "STATISTICS"]

STATISTICS = {
    "count_error": "|usable images - expected count|; higher is worse",
    "count": "usable images found (informational)",
}


def compute_image_count(image_set, *, manifest, expected: int) -> CheckResult:
    """Compare the number of usable images in one set with ``expected``.

    Parameters
    ----------
    image_set : synthgate.dataset.ImageSet
        A loaded set.
    manifest : pandas.DataFrame
        Its manifest (:func:`synthgate.manifest.build_manifest`); files that failed to decode
        do not count.
    expected : int
        The count the dataset configuration promises (``expected_counts`` in thresholds.toml).

    Returns
    -------
    CheckResult
        ``count`` (from Great Expectations' table row count) and ``count_error`` (absolute
        difference from ``expected``).
    """
    import great_expectations as gx

    from .contract import batch_definition

    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 1:
        raise ValueError(f"expected must be a positive integer; got {expected!r}")
    rows = manifest[manifest["decodable"]].reset_index(drop=True)
    batch = batch_definition().get_batch(batch_parameters={"dataframe": rows})
    outcome = batch.validate(gx.expectations.ExpectTableRowCountToEqual(value=expected))
    count = int(outcome.result["observed_value"])
    return CheckResult(
        check="image_count",
        statistic="count_error",
        statistics={"count_error": float(abs(count - expected)), "count": float(count)},
        n_real=count if image_set.role != "generated" else 0,
        n_generated=count if image_set.role == "generated" else 0,
        params={"role": image_set.role, "expected": expected, "expectation": "ExpectTableRowCountToEqual"},
    )
