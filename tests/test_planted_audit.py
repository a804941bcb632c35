"""Planted defects built from the demo's real slices must fail the check that targets them.

These run the library directly (no subprocess) on sets written by ``fixtures.planted``, so they
need no data outside the repository.
"""

from pathlib import Path

import pytest

from fixtures.planted import make_blurred, make_collapsed, plant_copies
from synthgate.audit import AuditSession
from synthgate.cache import FeatureCache
from synthgate.config import folder_dataset, load_config

REPO = Path(__file__).resolve().parents[1]
DEMO_REAL = REPO / "fixtures" / "demo" / "real"
DEMO_HOLDOUT = REPO / "fixtures" / "demo" / "holdout"


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "thresholds.toml")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.mktemp("cache"))


def _session(config, cache, generated):
    dataset = folder_dataset(DEMO_REAL, generated, groups="folder")
    return AuditSession(dataset, config, cache=cache, n_jobs=1)


def _real_paths():
    return sorted(DEMO_REAL.rglob("*.png"))


def test_collapsed_set_fails_duplicate_rate(config, cache, tmp_path):
    make_collapsed(_real_paths(), tmp_path / "collapsed", n_templates=3, n_images=60, seed=1)
    verdict = _session(config, cache, tmp_path / "collapsed").run("duplicate_rate", features="pixels")
    assert verdict.status == "fail", verdict.message
    assert verdict.result.statistics["largest_cluster"] >= 15


def test_holdout_passes_duplicate_rate(config, cache):
    verdict = _session(config, cache, DEMO_HOLDOUT).run("duplicate_rate", features="pixels")
    assert verdict.status == "pass", verdict.message


def test_blurred_set_fails_texture_gap(config, cache, tmp_path):
    make_blurred(_real_paths(), tmp_path / "blurred", sigma=2.0)
    verdict = _session(config, cache, tmp_path / "blurred").run("texture_gap", features="texture")
    assert not verdict.passed, verdict.message
    worst = verdict.result.evidence.table[0]["feature"]
    assert worst.startswith(("glcm", "lbp")), worst


def test_blurred_set_fails_separability(config, cache, tmp_path):
    make_blurred(_real_paths(), tmp_path / "blurred", sigma=2.0)
    verdict = _session(config, cache, tmp_path / "blurred").run("separability_auc", features="texture")
    assert verdict.status == "fail", verdict.message


def test_exact_copies_fail_nearest_real_distance(config, cache, tmp_path):
    generated = sorted((REPO / "fixtures" / "demo" / "generated").glob("*.png"))
    planted = plant_copies(_real_paths(), generated, tmp_path / "planted", n_copies=3, seed=2)
    session = _session(config, cache, tmp_path / "planted")

    verdict = session.run("nearest_real_distance", features="pixels")

    assert verdict.status == "fail", verdict.message
    assert verdict.result.statistics["exact_copies"] == 3
    names = session.image_set("generated").relative_paths()
    flagged = {names[pair.generated] for pair in verdict.result.evidence.pairs[:3]}
    assert flagged == set(planted.planted)
