"""Figures of the HTML report: the power spectrum, the curvelet heat map and the manifold view.

Each figure is a PNG embedded as base64, so the report stays one self-contained file. A figure
that cannot be drawn from what the check returned is left out (an empty string) rather than
stopping the report.
"""

from __future__ import annotations

import base64
import html
import io
import logging

import numpy as np

__all__ = ["check_figure_html", "manifold_html", "encoders_html", "provenance_text"]

logger = logging.getLogger(__name__)


def check_figure_html(recorded, session) -> str:
    """Return the HTML of the figure drawn for this check and feature set, or "" if it has none."""
    if recorded.check == "spectral_gap":
        return _spectrum_html(recorded.verdict.result, recorded.label)
    if recorded.check == "texture_gap" and recorded.features == "curvelet":
        return _curvelet_heat_map_html(recorded.verdict.result, session, recorded.label)
    return ""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure_html(figure, alt: str) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<p><img src='data:image/png;base64,{data}' alt='{html.escape(alt)}'></p>"


def _spectrum_html(result, title: str) -> str:
    """Plot the mean log power spectra of real and generated slices, and their difference."""
    rows = result.evidence.table
    if not rows or "frequency" not in rows[0]:
        return ""
    frequency = np.array([row["frequency"] for row in rows])
    mean_real = np.array([row["mean_real"] for row in rows])
    mean_generated = np.array([row["mean_generated"] for row in rows])
    band_start = result.params.get("high_band_start", frequency.max())
    statistics = result.statistics

    plt = _pyplot()
    figure, (spectra, difference) = plt.subplots(
        2, 1, figsize=(7, 4.6), dpi=90, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    spectra.plot(frequency, mean_real, label=f"real (n={result.n_real})", color="#1f77b4")
    spectra.plot(frequency, mean_generated, label=f"generated (n={result.n_generated})", color="#d62728")
    difference.plot(frequency, mean_generated - mean_real, color="#d62728", label="generated - real")
    baseline = statistics.get("real_high_band_max_gap")
    if baseline is not None:
        difference.axhspan(-baseline, baseline, color="grey", alpha=0.25, label="largest real-half gap (mean)")
    for axes in (spectra, difference):
        axes.axvspan(band_start, frequency.max(), color="orange", alpha=0.12, label="high-frequency band")
        axes.axvline(0.5, color="black", linewidth=0.6, linestyle=":")
        axes.grid(alpha=0.3)
    peak = statistics.get("peak_gap_frequency")
    if peak is not None:
        difference.axvline(peak, color="black", linestyle="--", linewidth=0.8, label=f"largest gap at {peak:.3f}")
    difference.axhline(0, color="black", linewidth=0.6)
    spectra.set_ylabel("mean log10 power")
    difference.set_ylabel("difference (log10)")
    difference.set_xlabel("spatial frequency (cycles per pixel; dotted: 0.5, the axis Nyquist frequency)")
    spectra.set_title(title, fontsize=9)
    spectra.legend(fontsize=7)
    difference.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    return _figure_html(figure, f"mean power spectra of {title}")


def _curvelet_heat_map_html(result, session, title: str) -> str:
    """Draw the signed standardised mean difference of every curvelet feature by scale and direction.

    texture_gap reports the |SMD| of the features it kept (``distributions["generated"]``). The
    sign comes from the difference of the feature means, which the session keeps in memory.
    """
    extractor = session.extractor("curvelet")
    dropped = set(result.params.get("dropped_features", ()))
    kept_columns = [index for index, name in enumerate(extractor.feature_names) if name not in dropped]
    abs_smd = np.asarray(result.evidence.distributions.get("generated", ()), dtype=float)
    if abs_smd.shape != (len(kept_columns),):
        logger.warning("no curvelet heat map: %d |SMD| values for %d kept features", abs_smd.size, len(kept_columns))
        return ""
    real = session.features("real", "curvelet")[:, kept_columns]
    generated = session.features("generated", "curvelet")[:, kept_columns]
    smd = np.full(len(extractor.feature_names), np.nan)
    smd[kept_columns] = np.sign(generated.mean(axis=0) - real.mean(axis=0)) * abs_smd
    grid = smd.reshape(extractor.scales, extractor.directions, -1)

    plt = _pyplot()
    limit = max(float(np.nanmax(np.abs(grid))), 1e-12) if np.isfinite(grid).any() else 1.0
    figure, panels = plt.subplots(
        1, grid.shape[2], figsize=(9.5, 1.6 + 0.55 * extractor.scales), dpi=90, layout="constrained"
    )
    angles = np.round(extractor.angles[0]).astype(int)
    for index, (axes, statistic) in enumerate(zip(np.atleast_1d(panels), ("log energy", "sparsity (Hoyer)"))):
        image = axes.imshow(grid[:, :, index], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        for scale in range(extractor.scales):
            for direction in range(extractor.directions):
                value = grid[scale, direction, index]
                if np.isfinite(value):
                    colour = "white" if abs(value) > 0.6 * limit else "black"
                    axes.text(direction, scale, f"{value:.1f}", ha="center", va="center", fontsize=6, color=colour)
        axes.set_xticks(range(extractor.directions), [f"{angle}°" for angle in angles], fontsize=6, rotation=90)
        axes.set_yticks(range(extractor.scales), [f"scale {scale + 1}" for scale in range(extractor.scales)], fontsize=7)
        axes.set_title(statistic, fontsize=8)
        axes.set_xlabel("direction (angle of the frequency vector)", fontsize=7)
    figure.colorbar(image, ax=panels, shrink=0.9, label="SMD, generated - real")
    figure.suptitle(f"{title}: effect size by scale (1 coarse, {extractor.scales} fine) and direction", fontsize=9)
    return _figure_html(figure, f"curvelet effect-size heat map of {title}")


def manifold_html(session) -> tuple[str, dict]:
    """Return the manifold section of the report and its summary for ``summary.json``.

    The view is computed once per run by :meth:`synthgate.audit.AuditSession.manifold`. A view
    that cannot be drawn (umap-learn or an encoder not installed, too few images) is replaced
    by one line that gives the reason, so the rest of the report is unaffected.

    Returns
    -------
    tuple of (str, dict)
        The HTML, and ``{"features", "drawn", ...}`` with the sizes, UMAP parameters and
        separability AUC when drawn, or the reason when not.
    """
    from .errors import SynthgateError

    features = session.manifold_features()
    heading = f"<h2>Manifold view ({html.escape(features)})</h2>"
    try:
        view, separability = session.manifold()
    except Exception as error:
        # The report is written whatever happens to this view, so an unexpected error from an
        # encoder or UMAP is reported here with its traceback in the log, not raised.
        reason = str(error) if isinstance(error, SynthgateError) else f"{type(error).__name__}: {error}"
        logger.warning("manifold view left out: %s", reason, exc_info=not isinstance(error, SynthgateError))
        return f"{heading}<p>Not drawn: {html.escape(reason)}</p>", {
            "features": features, "drawn": False, "reason": reason,
        }

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    real_points = view.coordinates[: view.n_real]
    generated_points = view.coordinates[view.n_real :]
    axes.scatter(generated_points[:, 0], generated_points[:, 1], s=6, alpha=0.5, c="#cf222e", label=f"generated ({view.n_generated})")
    axes.scatter(real_points[:, 0], real_points[:, 1], s=6, alpha=0.7, c="#0969da", label=f"real ({view.n_real})")
    axes.set_xlabel("UMAP 1")
    axes.set_ylabel("UMAP 2")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="best", markerscale=2)
    axes.set_title(f"real against generated on {features}")
    figure.tight_layout()

    params = view.params
    caption = (
        f"UMAP (umap-learn {params['umap_version']}, {params['n_neighbors']} neighbours, min_dist "
        f"{params['min_dist']:g}, {params['metric']} distance, seed {params['seed']}) of {view.n_real} real and "
        f"{view.n_generated} generated images, embedded together. Axes have no units; read clusters and overlap, "
        "not distances."
    )
    if separability is not None:
        interval = separability.interval
        spread = f" [{interval[0]:.3f}, {interval[1]:.3f}] ({separability.interval_kind})" if interval else ""
        caption += (
            f" Separability AUC on the same features: {separability.value:.3f}{spread}; 0.5 means a linear "
            "classifier cannot tell the sets apart, 1.0 that it always can."
        )
    provenance = session.encoder_provenance().get(features)
    if provenance:
        caption += f" Encoder: {provenance_text(provenance)}."
    summary = {
        "features": features,
        "drawn": True,
        "n_real": view.n_real,
        "n_generated": view.n_generated,
        "parameters": dict(params),
        "separability_auc": None if separability is None else separability.value,
    }
    section = heading + _figure_html(figure, f"UMAP of real and generated images on {features}")
    return section + f"<p>{html.escape(caption)}</p>", summary


def encoders_html(session) -> str:
    """Return the list of encoders used in this run, each with its model, weights file, SHA-256 and preprocessing."""
    provenance = session.encoder_provenance()
    if not provenance:
        return ""
    items = "".join(f"<li>{html.escape(provenance_text(entry))}</li>" for entry in provenance.values())
    return f"<p><b>Encoders:</b></p><ul>{items}</ul>"


def provenance_text(entry) -> str:
    """Return one line naming an encoder's model, dimension, weights file, SHA-256 prefix and input recipe."""
    preprocessing = entry.get("preprocessing") or {}
    steps = ", ".join(f"{key} {value}" for key, value in preprocessing.items())
    sha = str(entry.get("weights_sha256") or "")
    return (
        f"{entry.get('encoder')} (model {entry.get('model')}, {entry.get('embedding_dimension')}-d) with weights "
        f"{entry.get('weights_path')} (SHA-256 {sha[:16]}...); input: {steps}"
    )
