"""Planted fidelity defects built from the demo's real slices must fail the depth checks aimed at them.

The checks run in this process through :class:`~synthgate.audit.AuditSession` on folders written
by ``fixtures.planted`` and ``fixtures.planted_fidelity``, so no data outside the repository is
needed. The demo's holdout patients serve as the control that must pass.
"""

from pathlib import Path

import pytest

from fixtures.planted import make_blurred
from fixtures.planted_fidelity import add_checkerboard, make_blank_or_cropped
from synthgate.audit import AuditSession
from synthgate.cache import FeatureCache
from synthgate.config import folder_dataset, load_config
from synthgate.report import render_evidence

REPO = Path(__file__).resolve().parents[1]
DEMO_REAL = REPO / "fixtures" / "demo" / "real"
DEMO_HOLDOUT = REPO / "fixtures" / "demo" / "holdout"


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "thresholds.toml")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def real_paths():
    return sorted(DEMO_REAL.rglob("*.png"))


def _session(config, cache, generated):
    return AuditSession(folder_dataset(DEMO_REAL, generated, groups="folder"), config, cache=cache, n_jobs=1)


def test_checkerboard_fails_spectral_gap(config, cache, real_paths, tmp_path):
    add_checkerboard(real_paths, tmp_path / "checker", amplitude=2.0, period=2)
    session = _session(config, cache, tmp_path / "checker")

    verdict = session.run("spectral_gap", features="spectrum")

    assert verdict.status == "fail", verdict.message
    assert verdict.result.statistics["peak_gap_frequency"] > 0.69
    assert verdict.result.statistics["high_band_gap_excess"] > 1.0
    assert "mean power spectra" in render_evidence(session.verdicts[-1], session)


def test_blurred_set_fails_texture_gap_on_curvelets(config, cache, real_paths, tmp_path):
    make_blurred(real_paths, tmp_path / "blurred", sigma=2.0)
    session = _session(config, cache, tmp_path / "blurred")

    verdict = session.run("texture_gap", features="curvelet")

    assert not verdict.passed, verdict.message
    assert verdict.result.evidence.table[0]["feature"].startswith("curvelet_s")
    assert verdict.result.evidence.table[0]["smd"] < -2
    assert "curvelet effect-size heat map" in render_evidence(session.verdicts[-1], session)


def test_blank_or_cropped_fails_image_outliers(config, cache, real_paths, tmp_path):
    planted = make_blank_or_cropped(real_paths, tmp_path / "outliers")
    session = _session(config, cache, tmp_path / "outliers")

    verdict = session.run("image_outliers", features="properties")

    assert verdict.status == "fail", verdict.message
    # Half of the slices are cropped, so a share above 0.95 includes nearly all of them.
    assert verdict.result.statistics["outlier_share"] > 0.95
    names = session.image_set("generated").relative_paths()
    kinds = [planted.alterations[names[index]]["kind"] for index in verdict.result.evidence.images]
    assert kinds[0] == "blank"


def test_holdout_passes_depth_checks(config, cache):
    session = _session(config, cache, DEMO_HOLDOUT)
    runs = [("spectral_gap", "spectrum"), ("texture_gap", "curvelet"), ("image_outliers", "properties")]
    for check, features in runs:
        verdict = session.run(check, features=features)
        assert verdict.status == "pass", verdict.message


def test_structural_diversity_runs_on_image_sets(config, cache):
    session = _session(config, cache, DEMO_HOLDOUT)

    verdict = session.run("structural_diversity")

    recorded = session.verdicts[-1]
    assert verdict.status == "pass", verdict.message
    assert recorded.label == "structural_diversity"
    assert recorded.category == "diversity"
    assert verdict.result.n_generated == len(session.image_set("generated"))
    assert "MS-SSIM = " in render_evidence(recorded, session)
