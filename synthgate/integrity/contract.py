"""The integrity contract: expectations on the per-image manifest, validated with Great Expectations.

Each expectation is its own check with its parameters and severity in ``thresholds.toml``. This
module has ``png_mode``, ``grey_palette``, ``bit_depth``, ``unique_hashes``, ``no_shared_hashes``
and ``intensity_range``. ``decodable``, ``image_size`` and ``image_count`` have modules of their
own. Every check returns the number and share of offending files and lists them.
Validation uses an ephemeral Great Expectations 1.x context with analytics and progress bars
off, so it writes nothing to disk and prints nothing.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from ..result import CheckResult, Evidence

__all__ = [
    "compute_png_mode",
    "compute_grey_palette",
    "compute_bit_depth",
    "compute_unique_hashes",
    "compute_no_shared_hashes",
    "compute_intensity_range",
    "validate_rows",
    "batch_definition",
    "STATISTICS",
]

STATISTICS = {
    "unexpected_count": "files that break the expectation; higher is worse",
    "unexpected_share": "unexpected_count / files the expectation applies to; higher is worse",
}

MAX_LISTED_FILES = 50


def compute_png_mode(image_set, *, manifest, value_set=("L", "P")) -> CheckResult:
    """Count decodable images whose PNG mode is not in ``value_set``.

    ImageCLEF slices are single-channel: ``L`` (grey) or ``P`` (palette). Another mode
    (RGB, 16-bit ``I;16``) was converted before the checks, so its grey values may differ from
    what other tools read.
    """
    import great_expectations as gx

    rows = manifest[manifest["decodable"]]
    expectation = gx.expectations.ExpectColumnValuesToBeInSet(column="png_mode", value_set=list(value_set))
    return validate_rows("png_mode", image_set, rows, expectation, "png_mode", {"value_set": list(value_set)})


def compute_grey_palette(image_set, *, manifest) -> CheckResult:
    """Count palette-mode images whose palette is not grey (equal red, green and blue entries).

    A colour palette means the pixel indices are not grey levels. The loader then converts the
    colours to luminance, which a tool that reads the index would not do.
    """
    import great_expectations as gx

    rows = manifest[manifest["decodable"] & (manifest["png_mode"] == "P")]
    expectation = gx.expectations.ExpectColumnValuesToBeInSet(column="palette_is_grey", value_set=[True])
    return validate_rows("grey_palette", image_set, rows, expectation, "png_mode", {})


def compute_bit_depth(image_set, *, manifest, value=8) -> CheckResult:
    """Count decodable images whose stored bit depth is not ``value``."""
    import great_expectations as gx

    rows = manifest[manifest["decodable"]]
    expectation = gx.expectations.ExpectColumnValuesToBeInSet(column="bit_depth", value_set=[value])
    return validate_rows("bit_depth", image_set, rows, expectation, "bit_depth", {"value": value})


def compute_unique_hashes(image_set, *, manifest) -> CheckResult:
    """Count files of one set whose bytes equal another file of the same set (sha256).

    A duplicated file counts twice or more, once per copy. Real CT volumes do not repeat a
    slice byte for byte, and a generator that emits the same file twice inflates the set.
    """
    import great_expectations as gx

    rows = manifest[manifest["sha256"].notna()]
    expectation = gx.expectations.ExpectColumnValuesToBeUnique(column="sha256")
    return validate_rows("unique_hashes", image_set, rows, expectation, "sha256", {})


def compute_no_shared_hashes(image_set, *, manifest, real_manifest) -> CheckResult:
    """Count files of a generated or holdout set whose bytes equal a file of the real set.

    Such a file is a copy of a training image (generated set) or a leak between the training
    and holdout splits (holdout set).
    """
    import great_expectations as gx

    rows = manifest[manifest["sha256"].notna()]
    real_hashes = sorted(set(real_manifest["sha256"].dropna()))
    expectation = gx.expectations.ExpectColumnValuesToNotBeInSet(column="sha256", value_set=real_hashes)
    return validate_rows("no_shared_hashes", image_set, rows, expectation, "sha256", {"real_files": len(real_hashes)})


def compute_intensity_range(image_set, *, manifest, real_manifest, margin=0.0) -> CheckResult:
    """Count images whose mean grey level lies outside the real set's range.

    The range is [min, max] of the real images' mean intensity (grey levels 0-255), widened by
    ``margin`` on both sides. A slice outside it is in another window, inverted, or mostly
    empty.
    """
    import great_expectations as gx

    if margin < 0:
        raise ValueError(f"margin must be >= 0; got {margin!r}")
    real_means = real_manifest.loc[real_manifest["decodable"], "mean_intensity"]
    low = float(real_means.min()) - margin
    high = float(real_means.max()) + margin
    rows = manifest[manifest["decodable"]]
    expectation = gx.expectations.ExpectColumnValuesToBeBetween(
        column="mean_intensity", min_value=low, max_value=high
    )
    params = {"margin": margin, "min_value": low, "max_value": high}
    return validate_rows("intensity_range", image_set, rows, expectation, "mean_intensity", params)


@functools.lru_cache(maxsize=1)
def batch_definition():
    """Return a whole-dataframe batch definition in an ephemeral context, built once per process."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("synthgate").add_dataframe_asset("manifest")
    return asset.add_batch_definition_whole_dataframe("whole manifest")


def validate_rows(check, image_set, rows, expectation, value_column, params) -> CheckResult:
    """Validate ``expectation`` on ``rows`` of a manifest and turn the outcome into a CheckResult.

    The evidence table lists up to 50 offending files with their ``value_column``; the
    statistics count all of them.
    """
    rows = rows.reset_index(drop=True)
    if len(rows):
        batch = batch_definition().get_batch(batch_parameters={"dataframe": rows})
        outcome = batch.validate(expectation, result_format={"result_format": "COMPLETE"})
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            raise RuntimeError(f"Great Expectations failed on {check}: {outcome.exception_info}")
        unexpected = sorted(outcome.result.get("unexpected_index_list") or [])
    else:
        unexpected = []

    table = tuple(
        {"file": rows.at[index, "path"], value_column: _plain(rows.at[index, value_column])}
        for index in unexpected[:MAX_LISTED_FILES]
    )
    n_rows = len(rows)
    n_images = len(image_set) + len(image_set.failures)
    return CheckResult(
        check=check,
        statistic="unexpected_count",
        statistics={
            "unexpected_count": float(len(unexpected)),
            "unexpected_share": len(unexpected) / n_rows if n_rows else 0.0,
        },
        n_real=n_images if image_set.role != "generated" else 0,
        n_generated=n_images if image_set.role == "generated" else 0,
        params={
            "role": image_set.role,
            "expectation": type(expectation).__name__,
            "files_checked": n_rows,
            "listed": len(table),
            **params,
        },
        evidence=Evidence(table=table),
    )


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value
