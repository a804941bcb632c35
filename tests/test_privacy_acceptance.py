"""Acceptance of the holdout privacy checks on the shared lung-CT corpus, and their skip without a holdout.

Corpus layout: ``ct-real/split.csv`` splits 814 real slices by patient into 538 training and 276
holdout slices. The generated sets come from models trained on the training split only.

(a) A perfect generator: the holdout is split at random into two halves by slice; one half is
    the generated set, the other the holdout. Every check must pass.
(b) The corpus DCGAN (first 400 of its 2000 samples): it reproduces the two training LUNA16
    bodies without pixel copies, so copy_detection passes and every holdout check fails.
(c) Lightly altered copies of 1% and 5% of the training slices (each alteration in turn) mixed
    into the 38 public generated tiles. Those tiles come from generators trained on other data,
    so they are independent of both the training set and the holdout: membership and DCR stay
    at chance without the copies. (The holdout halves of (a) are not usable as this base:
    they share patients, so the holdout looks more "member-like" than the training set.)
    copy_detection must fail and name every copy; at 5% membership_inference or dcr_holdout
    must fail.

The realdata tests skip when the corpus is absent.
"""

import csv
import numpy as np
import pytest
from audit_runner import REPO, SHARED_DATA, run_audit

from synthgate.audit import AuditSession
from synthgate.cache import FeatureCache
from synthgate.config import folder_dataset, load_config

HOLDOUT_CHECKS = ("membership_inference", "dcr_holdout", "data_copying", "authenticity", "patient_exposure")
ALL_CHECKS = ("copy_detection", *HOLDOUT_CHECKS)
SPLIT = SHARED_DATA / "ct-real" / "split.csv"
N_DCGAN = 400

needs_corpus = pytest.mark.skipif(not SPLIT.is_file(), reason=f"shared CT corpus not found at {SHARED_DATA}")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Link the corpus into folders: train and holdout by patient, holdout halves, a DCGAN subset."""
    root = tmp_path_factory.mktemp("privacy-corpus")
    with open(SPLIT, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        source = SHARED_DATA / "ct-real" / row["file"]
        link = root / row["split"] / row["patient_id"] / source.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source)

    holdout = sorted((root / "holdout").rglob("*.png"))
    order = np.random.default_rng(0).permutation(len(holdout))
    for rank, index in enumerate(order):
        half = "half_a" if rank < len(holdout) // 2 else "half_b"
        link = root / half / holdout[index].parent.name / holdout[index].name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(holdout[index].resolve())

    dcgan = root / "dcgan"
    dcgan.mkdir()
    for path in sorted((SHARED_DATA / "ct-generated-dcgan").glob("gen_*.png"))[:N_DCGAN]:
        (dcgan / path.name).symlink_to(path)
    return {"root": root, "train_files": sorted((root / "train").rglob("*.png")),
            "cache": FeatureCache(root / "cache"), "config": load_config(REPO / "thresholds.toml")}


def _run(corpus, generated, holdout, checks=ALL_CHECKS):
    dataset = folder_dataset(corpus["root"] / "train", generated, holdout=holdout, groups="folder")
    session = AuditSession(dataset, corpus["config"], cache=corpus["cache"], n_jobs=2)
    return session, {check: session.run(check, features="pixels") for check in checks}


@pytest.mark.realdata
@needs_corpus
def test_perfect_generator_passes_every_check(corpus):
    _, verdicts = _run(corpus, corpus["root"] / "half_a", corpus["root"] / "half_b")
    for check, verdict in verdicts.items():
        assert verdict.status == "pass", verdict.message


@pytest.mark.realdata
@needs_corpus
def test_dcgan_fails_holdout_checks_without_pixel_copies(corpus):
    _, verdicts = _run(corpus, corpus["root"] / "dcgan", corpus["root"] / "holdout")
    assert verdicts["copy_detection"].status == "pass", verdicts["copy_detection"].message
    for check in HOLDOUT_CHECKS:
        assert verdicts[check].status == "fail", verdicts[check].message
    assert verdicts["membership_inference"].result.statistics["auc"] > 0.9


@pytest.mark.realdata
@needs_corpus
@pytest.mark.parametrize("share", [0.01, 0.05])
def test_planted_copies_fail_and_are_named(corpus, tmp_path, share):
    from fixtures.planted_privacy import plant_mixed_copies

    public = sorted((SHARED_DATA / "ct-generated-public").rglob("*.png"))
    n_copies = round(share * len(corpus["train_files"]))
    planted = plant_mixed_copies(corpus["train_files"], public, tmp_path / "generated", n_copies=n_copies, seed=11)

    session, verdicts = _run(corpus, tmp_path / "generated", corpus["root"] / "holdout")

    copies = verdicts["copy_detection"]
    assert copies.status == "fail", copies.message
    names = session.image_set("generated").relative_paths()
    flagged = {names[row["generated_row"]] for row in copies.result.evidence.table if row["kind"] != "closest"}
    assert flagged == set(planted.planted)
    if share == 0.05:
        attack_or_dcr = (verdicts["membership_inference"].status, verdicts["dcr_holdout"].status)
        assert "fail" in attack_or_dcr, verdicts["membership_inference"].message + verdicts["dcr_holdout"].message


@pytest.mark.realdata
@needs_corpus
def test_public_base_alone_passes_attack_and_dcr(corpus):
    _, verdicts = _run(corpus, SHARED_DATA / "ct-generated-public", corpus["root"] / "holdout",
                       checks=("membership_inference", "dcr_holdout", "copy_detection"))
    for verdict in verdicts.values():
        assert verdict.status == "pass", verdict.message


@pytest.mark.realdata
@needs_corpus
def test_same_seed_gives_identical_numbers(corpus):
    checks = ("membership_inference", "dcr_holdout", "data_copying", "authenticity", "patient_exposure")
    _, first = _run(corpus, corpus["root"] / "half_a", corpus["root"] / "half_b", checks=checks)
    _, second = _run(corpus, corpus["root"] / "half_a", corpus["root"] / "half_b", checks=checks)
    for check in checks:
        assert dict(first[check].result.statistics) == dict(second[check].result.statistics), check


def test_audit_without_holdout_skips_with_reason(tmp_path):
    demo = REPO / "fixtures" / "demo"
    run = run_audit(
        tmp_path, "--real", str(demo / "real"), "--generated", str(demo / "generated"),
        "-k", "membership_inference or patient_exposure or copy_detection",
    )
    skipped = {entry["check"]: entry["reason"] for entry in run.summary["skipped"]}
    assert "holdout = " in skipped["membership_inference[pixels]"], run.output
    assert "--holdout DIR" in skipped["membership_inference[pixels]"]
    assert "patient_exposure[pixels]" in skipped
    assert run.verdict("copy_detection[pixels]") == "pass"
    assert run.returncode == 0, run.output
    assert "needs a holdout set" in run.report.read_text()


def test_audit_with_holdout_shows_roc_and_distances(tmp_path):
    demo = REPO / "fixtures" / "demo"
    run = run_audit(
        tmp_path, "--real", str(demo / "real"), "--generated", str(demo / "generated"),
        "--holdout", str(demo / "holdout"), "--groups", "folder", "-k", "membership_inference or dcr_holdout",
    )
    report = run.report.read_text()
    assert "ROC curve of membership_inference[pixels]" in report, run.output
    assert "distribution plot of dcr_holdout[pixels]" in report
    assert run.verdict("membership_inference[pixels]") == "fail"
