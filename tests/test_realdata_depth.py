"""The depth checks on real CT: unseen real patients pass, generators and a narrow collapse do not.

The real set is the training split of the shared lung-CT corpus, linked into patient folders as in
``test_realdata_audit.py``. The checks run in this process through
:class:`~synthgate.audit.AuditSession`. These tests skip when the corpus is absent.
"""

import csv
from pathlib import Path

import pytest
from audit_runner import SHARED_DATA

from fixtures.planted import make_collapsed
from synthgate.audit import AuditSession
from synthgate.cache import FeatureCache
from synthgate.config import folder_dataset, load_config

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not (SHARED_DATA / "ct-real" / "split.csv").is_file(), reason=f"shared CT corpus not found at {SHARED_DATA}"),
]

REPO = Path(__file__).resolve().parents[1]
DEPTH_CHECKS = (
    ("spectral_gap", "spectrum"),
    ("texture_gap", "curvelet"),
    ("image_outliers", "properties"),
    ("structural_diversity", None),
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    with open(SHARED_DATA / "ct-real" / "split.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            source = SHARED_DATA / "ct-real" / row["file"]
            link = root / row["split"] / row["patient_id"] / source.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
    return root


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "thresholds.toml")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.mktemp("cache"))


def _session(corpus, config, cache, generated):
    dataset = folder_dataset(corpus / "train", generated, groups="folder")
    return AuditSession(dataset, config, cache=cache, n_jobs=2)


def test_holdout_passes_depth_checks(corpus, config, cache):
    session = _session(corpus, config, cache, corpus / "holdout")
    for check, features in DEPTH_CHECKS:
        verdict = session.run(check, features=features)
        assert verdict.status == "pass", verdict.message


def test_dcgan_depth_verdicts(corpus, config, cache, tmp_path):
    # The first 400 of the 2000 DCGAN samples keep the test short; the README reports all 2000.
    for source in sorted((SHARED_DATA / "ct-generated-dcgan").glob("gen_*.png"))[:400]:
        (tmp_path / "dcgan" / source.name).parent.mkdir(exist_ok=True)
        (tmp_path / "dcgan" / source.name).symlink_to(source)
    session = _session(corpus, config, cache, tmp_path / "dcgan")

    spectral = session.run("spectral_gap", features="spectrum")
    outliers = session.run("image_outliers", features="properties")
    curvelet = session.run("texture_gap", features="curvelet")

    assert len(session.image_set("generated")) == 400
    assert spectral.status == "fail", spectral.message
    assert spectral.result.statistics["auc"] > 0.99
    assert outliers.status == "fail", outliers.message
    laplacian = next(row for row in outliers.result.evidence.table if row["property"] == "laplacian_variance")
    assert laplacian["share_below"] > 0.9
    assert curvelet.status == "warn", curvelet.message


def test_narrow_template_collapse_fails_structural_diversity(corpus, config, cache, tmp_path):
    volume = sorted((corpus / "train" / "LUNA16-559804568094").glob("*.png"))
    middle = len(volume) // 2
    make_collapsed(volume[middle - 10 : middle + 10], tmp_path / "collapsed", n_templates=20, n_images=200, seed=3)
    session = _session(corpus, config, cache, tmp_path / "collapsed")

    verdict = session.run("structural_diversity")

    assert verdict.status == "fail", verdict.message
    assert verdict.result.statistics["msssim_gap"] > 0.2
