"""Render verdicts for people: HTML fragments for pytest-html, thumbnails, plots and summary.json.

Everything is embedded as base64 data, so the report stays one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .registry import CATEGORIES
from .report_figures import check_figure_html

__all__ = ["render_evidence", "render_scorecard", "write_summary", "SUMMARY_SCHEMA_VERSION"]

SUMMARY_SCHEMA_VERSION = 1
THUMBNAIL_PX = 128
MAX_PAIRS_SHOWN = 8
MAX_CLUSTER_SHOWN = 16

# Statistics drawn as a vertical line on a check's distribution plot.
THRESHOLD_LINES = {
    "nearest_real_distance": "distance_threshold",
    "copy_detection": "ssim_threshold",
    "patient_exposure": "exposure_distance_threshold",
}

# Distribution keys that hold a ROC curve (false- and true-positive rates) rather than samples.
ROC_KEYS = ("roc_fpr", "roc_tpr")

# Evidence table columns that hold row indices of an image set; the report shows file names.
ROW_COLUMNS = {"generated_row": "generated", "real_row": "real", "second_real_row": "real"}
BOX_COLOUR = (255, 64, 64)

# Tables longer than this are folded into a <details> element under the figures.
MAX_TABLE_ROWS_OPEN = 20

# Score name of evidence.generated_pairs per check; cosine similarity when not listed.
GENERATED_PAIR_SCORES = {"structural_diversity": "MS-SSIM"}

_STATUS_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "error": "#cf222e", "skipped": "#57606a"}


def render_evidence(recorded, session) -> str:
    """Return the HTML shown under one audit test: meaning, numbers, evidence and plot."""
    verdict = recorded.verdict
    result = verdict.result
    spec = verdict.spec
    parts = [
        f"<div class='synthgate-evidence'><h4>{html.escape(recorded.label)}: {_badge(verdict.status)}</h4>",
        f"<p>{html.escape(_description(recorded.check))}</p>",
        _bounds_table(verdict),
    ]
    if spec.rationale or spec.source:
        parts.append(
            f"<p><b>Why these thresholds:</b> {html.escape(spec.rationale)} "
            f"<i>{html.escape(spec.source)}</i></p>"
        )
    parts.append(f"<p><b>Statistics:</b> {html.escape(_format_mapping(result.statistics))}</p>")
    parts.append(f"<p><b>Effective parameters:</b> {html.escape(_format_mapping(result.params))}</p>")

    evidence = result.evidence
    if evidence.pairs:
        parts.append(_pairs_html(evidence.pairs[:MAX_PAIRS_SHOWN], session, _marked_regions(evidence.table)))
        if len(evidence.pairs) > MAX_PAIRS_SHOWN:
            parts.append(_pair_names_html(evidence.pairs, session))
    if evidence.generated_pairs:
        score_name = GENERATED_PAIR_SCORES.get(recorded.check, "cosine similarity")
        parts.append(_generated_pairs_html(evidence.generated_pairs[:MAX_PAIRS_SHOWN], session, score_name))
    if evidence.clusters:
        parts.append(_cluster_html(evidence.clusters[0], session))
    if evidence.images:
        parts.append(_images_html(evidence.images[:MAX_CLUSTER_SHOWN], session))
    figure = check_figure_html(recorded, session)
    if figure:
        parts.append(figure)
    if evidence.table:
        table = _table_html(_name_rows(evidence.table, session))
        if len(evidence.table) > MAX_TABLE_ROWS_OPEN:
            table = f"<details><summary>Table of {len(evidence.table)} rows</summary>{table}</details>"
        parts.append(table)
    if all(key in evidence.distributions for key in ROC_KEYS):
        parts.append(_roc_html(evidence.distributions, recorded.label, result.params.get("max_fpr")))
    samples = {name: values for name, values in evidence.distributions.items() if name not in ROC_KEYS}
    if samples:
        line_name, line_value = _threshold_line(recorded)
        parts.append(_plot_html(samples, recorded.label, line_name, line_value))
    parts.append("</div>")
    return "\n".join(parts)


def render_scorecard(
    recorded_verdicts, errors, dataset, *, counts_by_role=None, versions=None, group_source=None, skipped=()
) -> str:
    """Return the top of the report: the verdict in one line, the dataset, and the scorecard.

    ``counts_by_role`` maps each loaded role to (usable images, excluded files); ``versions``
    maps package names to versions. Both are shown above the scorecard when given.
    """
    counts = {status: 0 for status in ("pass", "warn", "fail")}
    for recorded in recorded_verdicts:
        counts[recorded.verdict.status] += 1
    blocked = counts["fail"] > 0 or bool(errors) or not recorded_verdicts
    if not recorded_verdicts and not errors:
        headline = "RELEASE BLOCKED: NO CHECK RAN"
    else:
        headline = "RELEASE BLOCKED" if blocked else "RELEASE GATE PASSED"
    colour = _STATUS_COLOURS["fail" if blocked else "pass"]

    rows = []
    status_order = {"fail": 0, "warn": 1, "pass": 2}
    for category in CATEGORIES:
        in_category = [r for r in recorded_verdicts if r.category == category]
        for recorded in sorted(in_category, key=lambda r: status_order[r.verdict.status]):
            verdict = recorded.verdict
            result = verdict.result
            bounds = "; ".join(outcome.bound.describe() for outcome in verdict.outcomes)
            baseline = "" if result.baseline is None else f"{result.baseline:.4g} ({result.baseline_kind})"
            rows.append(
                "<tr>"
                f"<td>{category}</td><td>{html.escape(recorded.check)}</td>"
                f"<td>{html.escape(recorded.features or recorded.role or '')}</td>"
                f"<td>{html.escape(judged_statistics(verdict))}</td>"
                f"<td>{html.escape(bounds)}</td><td>{html.escape(baseline)}</td>"
                f"<td>{result.n_real} / {result.n_generated}</td>"
                f"<td>{_badge(verdict.status)}</td></tr>"
            )
    for label, message in errors:
        rows.append(
            f"<tr><td></td><td>{html.escape(label)}</td><td></td><td colspan='4'>{html.escape(message)}</td>"
            f"<td>{_badge('error')}</td></tr>"
        )
    # A check that cannot run on this dataset (no holdout, no patient groups) is listed with the
    # input it needs, so that its absence is visible. It does not block the release.
    for label, reason in skipped:
        rows.append(
            f"<tr><td></td><td>{html.escape(label)}</td><td></td><td colspan='4'>{html.escape(reason)}</td>"
            f"<td>{_badge('skipped')}</td></tr>"
        )
    folders = ", ".join(
        f"{role}: {html.escape(str(dataset.folder(role)))}"
        for role in ("real", "generated", "holdout")
        if dataset.folder(role) is not None
    )
    details = [f"<p>{folders}</p>"]
    if counts_by_role:
        details.append(
            "<p><b>Images:</b> "
            + ", ".join(
                f"{role} {usable} usable" + (f" + {excluded} excluded" if excluded else "")
                for role, (usable, excluded) in counts_by_role.items()
            )
            + "</p>"
        )
    if group_source == "inferred":
        details.append(
            "<p><b>Patient groups:</b> none given, so real slices were grouped into pseudo-patients by "
            "pixel similarity; pass --groups or set groups in thresholds.toml for exact patients.</p>"
        )
    elif group_source == "given":
        details.append("<p><b>Patient groups:</b> as given by the dataset.</p>")
    feature_sets = sorted({r.features for r in recorded_verdicts if r.features})
    seeds = sorted({str(r.verdict.result.params["seed"]) for r in recorded_verdicts if "seed" in r.verdict.result.params})
    details.append(
        f"<p><b>Feature sets:</b> {html.escape(', '.join(feature_sets) or 'none')}; "
        f"<b>seeds:</b> {html.escape(', '.join(seeds) or 'none')}</p>"
    )
    if versions:
        details.append(
            "<p><b>Versions:</b> "
            + html.escape(", ".join(f"{name} {version}" for name, version in versions.items()))
            + "</p>"
        )
    return (
        f"<h2>synthgate audit of dataset '{html.escape(dataset.name)}'</h2>"
        f"<p style='font-size:1.3em;color:{colour}'><b>{headline}</b>: {counts['pass']} passed, "
        f"{_plural(counts['warn'], 'warning')}, {counts['fail']} failed, {_plural(len(errors), 'error')}.</p>"
        + "".join(details)
        + "<table class='synthgate-scorecard' border='1' cellpadding='4' style='border-collapse:collapse'>"
        "<tr><th>category</th><th>check</th><th>features / set</th><th>statistic</th><th>threshold</th>"
        "<th>baseline</th><th>n real / generated</th><th>verdict</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def write_summary(path: Path, recorded_verdicts, errors, session, versions, skipped=(), manifold=None) -> None:
    """Write ``summary.json``: one entry per check with its numbers, thresholds, verdict and evidence.

    ``manifold`` is the manifold view's summary from :func:`synthgate.report_figures.manifold_html`,
    or None when the view was turned off.
    """
    provenance = session.encoder_provenance()
    dataset = session.dataset
    checks = []
    for recorded in recorded_verdicts:
        verdict = recorded.verdict
        result = verdict.result
        checks.append(
            {
                "name": recorded.check,
                "category": recorded.category,
                "features": recorded.features,
                "encoder": recorded.features if recorded.features in provenance else None,
                "role": recorded.role,
                "statistic": result.statistic,
                "value": result.value,
                "statistics": dict(result.statistics),
                "interval": list(result.interval) if result.interval else None,
                "interval_kind": result.interval_kind,
                "baseline": result.baseline,
                "baseline_kind": result.baseline_kind,
                "bounds": [
                    {"statistic": o.bound.statistic, "kind": o.bound.kind, "limit": o.bound.limit,
                     "observed": o.observed, "passed": o.passed}
                    for o in verdict.outcomes
                ],
                "severity": verdict.spec.severity,
                "verdict": verdict.status,
                "n_real": result.n_real,
                "n_generated": result.n_generated,
                "parameters": _jsonable(dict(result.params)),
                "runtime_s": round(recorded.runtime_s, 3),
                "evidence": _evidence_summary(result.evidence, session, recorded.check),
            }
        )
    document = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "dataset": dataset.name,
        "folders": {
            role: str(dataset.folder(role)) for role in ("real", "generated", "holdout") if dataset.folder(role)
        },
        "versions": {"python": platform.python_version(), **versions},
        "blocked": any(r.verdict.status == "fail" for r in recorded_verdicts) or bool(errors) or not recorded_verdicts,
        "checks": checks,
        "errors": [{"test": label, "message": message} for label, message in errors],
        "skipped": [{"check": label, "reason": reason} for label, reason in skipped],
        "encoders": provenance,
        "manifold": manifold,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _evidence_summary(evidence, session, check=None):
    """Name the files behind the evidence indices, so CI logs and scripts can act on them."""
    summary = {}
    if evidence.pairs or evidence.clusters or evidence.images or evidence.generated_pairs:
        generated = session.image_set("generated").relative_paths()
        real = session.image_set("real").relative_paths()
        summary["pairs"] = [
            {"generated": generated[p.generated], "real": real[p.real], "score": p.score, "score_name": p.score_name}
            for p in evidence.pairs
        ]
        summary["clusters"] = [[generated[i] for i in cluster] for cluster in evidence.clusters]
        summary["images"] = [generated[i] for i in evidence.images]
        score_name = GENERATED_PAIR_SCORES.get(check, "cosine similarity")
        summary["generated_pairs"] = [
            {"a": generated[a], "b": generated[b], "score": value, "score_name": score_name}
            | ({"cosine_similarity": value} if score_name == "cosine similarity" else {})
            for a, b, value in evidence.generated_pairs
        ]
    if evidence.table:
        summary["table"] = [_jsonable(dict(row)) for row in _name_rows(evidence.table, session)]
    return summary


def _threshold_line(recorded):
    """Return (label, value) of the vertical line for a check's distribution plot, or (None, None).

    nearest_real_distance draws its distance threshold. texture_gap plots per-feature |SMD|
    and is judged on their median, so it draws the largest median |SMD| its bound allows.
    """
    result = recorded.verdict.result
    name = THRESHOLD_LINES.get(recorded.check)
    if name is not None and name in result.statistics:
        return name, float(result.statistics[name])
    if recorded.check == "texture_gap":
        for outcome in recorded.verdict.outcomes:
            if outcome.bound.statistic == "median_abs_smd_excess" and outcome.bound.kind == "max":
                allowed = result.statistics["real_median_abs_smd"] + outcome.bound.limit
                return "largest allowed median |SMD|", float(allowed)
    return None, None


def judged_statistics(verdict) -> str:
    """Return the judged statistics with their values, then the headline if it is not judged.

    For example ``close_share_excess = 0.81; exact_copies = 0 (close_share = 0.86)``.
    """
    judged = []
    for outcome in verdict.outcomes:
        text = f"{outcome.bound.statistic} = {outcome.observed:.4g}"
        if text not in judged:
            judged.append(text)
    result = verdict.result
    if result.statistic not in {outcome.bound.statistic for outcome in verdict.outcomes}:
        return "; ".join(judged) + f" ({result.statistic} = {result.value:.4g})"
    return "; ".join(judged)


def _plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _badge(status):
    colour = _STATUS_COLOURS[status]
    return f"<b style='color:{colour}'>{status.upper()}</b>"


def _description(check):
    from .registry import CHECK_SPECS

    return CHECK_SPECS[check].description


def _bounds_table(verdict):
    result = verdict.result
    rows = []
    for outcome in verdict.outcomes:
        rows.append(
            f"<tr><td>{html.escape(outcome.bound.describe())}</td><td>{outcome.observed:.4g}</td>"
            f"<td>{_badge('pass' if outcome.passed else verdict.spec.severity)}</td></tr>"
        )
    extra = []
    if result.baseline is not None:
        extra.append(f"baseline {result.baseline:.4g} ({html.escape(result.baseline_kind)})")
    if result.interval is not None:
        low, high = result.interval
        extra.append(f"{html.escape(result.statistic)} {html.escape(result.interval_kind)} [{low:.4g}, {high:.4g}]")
    extra.append(f"n real = {result.n_real}, n generated = {result.n_generated}, severity {verdict.spec.severity}")
    return (
        "<table border='1' cellpadding='3' style='border-collapse:collapse'>"
        "<tr><th>bound</th><th>observed</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
        f"<p>{'; '.join(extra)}</p>"
    )


def _png_base64(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumbnail(image, caption, box=None):
    """Return an HTML figure of ``image``; ``box`` (top, left, bottom, right) in image pixels is drawn in red."""
    small = Image.fromarray(image).resize((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    if box:
        scale = THUMBNAIL_PX / image.shape[0]
        top, left, bottom, right = (round(value * scale) for value in box)
        small = small.convert("RGB")
        ImageDraw.Draw(small).rectangle([left, top, max(right - 1, left), max(bottom - 1, top)], outline=BOX_COLOUR, width=2)
    data = _png_base64(np.asarray(small))
    return (
        "<figure style='display:inline-block;margin:2px;text-align:center'>"
        f"<img src='data:image/png;base64,{data}' width='{THUMBNAIL_PX}' height='{THUMBNAIL_PX}' alt='{html.escape(caption)}'>"
        f"<figcaption style='font-size:0.75em;max-width:{THUMBNAIL_PX}px;overflow-wrap:anywhere'>{html.escape(caption)}</figcaption></figure>"
    )


def _pairs_html(pairs, session, regions=None):
    """Return thumbnails of generated / real pairs; ``regions`` from :func:`_marked_regions` adds boxes."""
    regions = regions or {}
    generated = session.image_set("generated")
    real = session.image_set("real")
    generated_images = generated.images([pair.generated for pair in pairs])
    real_images = real.images([pair.real for pair in pairs])
    generated_names = generated.relative_paths()
    real_names = real.relative_paths()
    blocks = []
    for pair, generated_image, real_image in zip(pairs, generated_images, real_images):
        region = regions.get((pair.generated, pair.real), {})
        thumbnails = (
            _thumbnail(generated_image, f"generated {generated_names[pair.generated]}", region.get("generated_box"))
            + _thumbnail(real_image, f"real {real_names[pair.real]}", region.get("real_box"))
        )
        second = region.get("second_real_row")
        if second is not None:
            thumbnails += _thumbnail(real.images([second])[0], f"real {real_names[second]}")
        kind = f"{region['kind']}: " if region.get("kind") else ""
        blocks.append(
            "<div style='display:inline-block;border:1px solid #ccc;margin:3px;padding:2px'>"
            + thumbnails
            + f"<div style='font-size:0.8em'>{html.escape(kind)}{html.escape(pair.score_name)} = {pair.score:.4g}</div></div>"
        )
    marked = " Red boxes mark the matching region." if any("generated_box" in r for r in regions.values()) else ""
    return f"<p><b>Closest generated / real pairs</b> (worst first).{marked}</p>" + "".join(blocks)


def _marked_regions(table):
    """Map (generated row, real row) to the boxes, kind and blend partner of evidence table rows."""
    regions = {}
    for row in table:
        if "generated_row" in row and "real_row" in row:
            keys = ("generated_box", "real_box", "kind", "second_real_row")
            regions[(row["generated_row"], row["real_row"])] = {
                key: row[key] for key in keys if row.get(key) is not None and row.get(key) != ()
            }
    return regions


def _name_rows(table, session):
    """Return the table with the row-index columns of :data:`ROW_COLUMNS` replaced by file names."""
    if not any(column in row for row in table for column in ROW_COLUMNS):
        return table
    names = {role: session.image_set(role).relative_paths() for role in set(ROW_COLUMNS.values())}
    named = []
    for row in table:
        copy = {}
        for column, value in row.items():
            role = ROW_COLUMNS.get(column)
            if role is not None and isinstance(value, (int, np.integer)) and 0 <= value < len(names[role]):
                copy[column.removesuffix("_row")] = names[role][value]
            else:
                copy[column] = value
        named.append(copy)
    return tuple(named)


def _roc_html(distributions, title, max_fpr):
    """Return the ROC curve of a membership attack with the chance diagonal, as an embedded PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr = np.asarray(distributions["roc_fpr"], dtype=float)
    tpr = np.asarray(distributions["roc_tpr"], dtype=float)
    figure, axes = plt.subplots(figsize=(3.6, 3.4), dpi=90)
    axes.plot(fpr, tpr, drawstyle="steps-post", label="attack (mean over repeats)")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    if max_fpr is not None:
        axes.axvline(float(max_fpr), color="black", linestyle="--", label=f"FPR = {float(max_fpr):g}")
    axes.set_xlabel("false-positive rate (holdout flagged)", fontsize=8)
    axes.set_ylabel("true-positive rate (training found)", fontsize=8)
    axes.set_title(f"ROC: {title}", fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<p><img src='data:image/png;base64,{data}' alt='ROC curve of {html.escape(title)}'></p>"


def _pair_names_html(pairs, session):
    generated = session.image_set("generated").relative_paths()
    real = session.image_set("real").relative_paths()
    rows = tuple(
        {"generated": generated[pair.generated], "real": real[pair.real], pair.score_name: pair.score} for pair in pairs
    )
    return f"<p><b>All {len(pairs)} listed pairs:</b></p>" + _table_html(rows)


def _generated_pairs_html(pairs, session, score_name="cosine similarity"):
    generated = session.image_set("generated")
    names = generated.relative_paths()
    blocks = []
    for row_a, row_b, similarity in pairs:
        image_a, image_b = generated.images([row_a, row_b])
        blocks.append(
            "<div style='display:inline-block;border:1px solid #ccc;margin:3px;padding:2px'>"
            + _thumbnail(image_a, names[row_a])
            + _thumbnail(image_b, names[row_b])
            + f"<div style='font-size:0.8em'>{html.escape(score_name)} = {similarity:.4f}</div></div>"
        )
    return "<p><b>Most similar generated pairs:</b></p>" + "".join(blocks)


def _cluster_html(cluster, session):
    generated = session.image_set("generated")
    shown = list(cluster[:MAX_CLUSTER_SHOWN])
    names = generated.relative_paths()
    thumbs = "".join(_thumbnail(image, names[index]) for index, image in zip(shown, generated.images(shown)))
    return f"<p><b>Largest near-duplicate cluster</b> ({len(cluster)} images listed, {len(shown)} shown):</p>{thumbs}"


def _images_html(indices, session):
    generated = session.image_set("generated")
    names = generated.relative_paths()
    thumbs = "".join(_thumbnail(image, names[index]) for index, image in zip(indices, generated.images(list(indices))))
    return f"<p><b>Generated images flagged by this check:</b></p>{thumbs}"


def _table_html(rows):
    columns = list(rows[0])
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_format_value(row.get(column)))}</td>" for column in columns) + "</tr>"
        for row in rows
    )
    return f"<table border='1' cellpadding='3' style='border-collapse:collapse'><tr>{header}</tr>{body}</table>"


def _plot_html(distributions, title, line_name, line_value):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3), dpi=90)
    finite = [np.asarray(values, dtype=float) for values in distributions.values() if len(values)]
    if finite:
        low = min(values.min() for values in finite)
        high = max(values.max() for values in finite)
        bins = np.linspace(low, high if high > low else low + 1, 40)
        for name, values in distributions.items():
            if len(values):
                axes.hist(np.asarray(values, dtype=float), bins=bins, alpha=0.55, density=True, label=f"{name} (n={len(values)})")
    if line_value is not None:
        axes.axvline(line_value, color="black", linestyle="--", label=f"{line_name} = {line_value:.3g}")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<p><img src='data:image/png;base64,{data}' alt='distribution plot of {html.escape(title)}'></p>"


def _format_value(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _format_mapping(mapping):
    return ", ".join(f"{key}={_format_value(value)}" for key, value in mapping.items())


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
