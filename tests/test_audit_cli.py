"""The audit as a user runs it: ``pytest audits/`` on the demo data and on folders with bad input."""

import shutil

import pytest
from audit_runner import REPO, run_audit

DEMO = REPO / "fixtures" / "demo"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_audit(tmp_path_factory.mktemp("demo"))


def test_demo_writes_self_contained_report(demo_run):
    assert demo_run.report.is_file(), demo_run.output
    text = demo_run.report.read_text()
    assert "synthgate audit of dataset 'demo'" in text
    assert "data:image/png;base64," in text
    assert not (demo_run.report.parent / "assets").exists()


def test_demo_summary_lists_every_check(demo_run):
    names = {check["name"] for check in demo_run.summary["checks"]}
    assert {"decodable", "separability_auc", "duplicate_rate", "nearest_real_distance", "texture_gap"} <= names
    assert demo_run.summary["schema_version"] == 1


def test_demo_gan_fails_separability(demo_run):
    assert demo_run.verdict("separability_auc[texture]") == "fail"
    assert demo_run.returncode == 1, demo_run.output
    assert demo_run.summary["blocked"] is True


def test_demo_failure_message_shows_value_and_threshold(demo_run):
    assert "auc <= 0.714: observed" in demo_run.output


def test_second_run_is_identical(demo_run, tmp_path):
    second = run_audit(tmp_path, cache_dir=demo_run.report.parents[1] / "cache")
    first_values = [(c["name"], c["features"], c["role"], c["statistics"]) for c in demo_run.summary["checks"]]
    second_values = [(c["name"], c["features"], c["role"], c["statistics"]) for c in second.summary["checks"]]
    assert first_values == second_values


def _copy_demo(tmp_path):
    real = tmp_path / "real"
    generated = tmp_path / "generated"
    shutil.copytree(DEMO / "real", real)
    shutil.copytree(DEMO / "generated", generated)
    return real, generated


def test_missing_folder_stops_with_message(tmp_path):
    run = run_audit(tmp_path, "--real", str(tmp_path / "nope"), "--generated", str(DEMO / "generated"))
    assert run.returncode == 4, run.output
    assert "nope" in run.output
    assert "does not exist" in run.output
    assert "Traceback" not in run.output


def test_empty_folder_stops_with_message(tmp_path):
    (tmp_path / "empty").mkdir()
    run = run_audit(tmp_path, "--real", str(DEMO / "real"), "--generated", str(tmp_path / "empty"))
    assert run.returncode == 4, run.output
    assert "empty" in run.output
    assert "Traceback" not in run.output


def test_unknown_dataset_lists_known_ones(tmp_path):
    run = run_audit(tmp_path, "--dataset", "gen2024")
    assert run.returncode == 4, run.output
    assert "unknown dataset 'gen2024'" in run.output
    assert "demo" in run.output
    assert "Traceback" not in run.output


def test_thresholds_typo_stops_with_key(tmp_path):
    text = (REPO / "thresholds.toml").read_text().replace("max_auc =", "max_acu =")
    bad = tmp_path / "thresholds.toml"
    bad.write_text(text.replace('"fixtures/', f'"{REPO}/fixtures/'))
    run = run_audit(tmp_path, "--thresholds", str(bad))
    assert run.returncode == 4, run.output
    assert "max_acu" in run.output
    assert "Traceback" not in run.output


def test_corrupt_files_fail_integrity_and_are_named(tmp_path):
    real, generated = _copy_demo(tmp_path)
    (generated / "zero.png").write_bytes(b"")
    (generated / "notes.png").write_text("this is not an image")
    first = sorted(generated.glob("gen_*.png"))[0].read_bytes()
    (generated / "truncated.png").write_bytes(first[: len(first) // 2])

    run = run_audit(
        tmp_path, "--real", str(real), "--generated", str(generated), "--groups", "folder",
        "-k", "decodable or separability_auc",
    )

    assert run.verdict("decodable[generated]") == "fail"
    assert run.verdict("decodable[real]") == "pass"
    for name in ("zero.png", "notes.png", "truncated.png"):
        assert name in run.report.read_text(), name
        assert name in run.output, name
    assert "Traceback" not in run.output
    separability = run.check("separability_auc[texture]")
    assert separability["n_generated"] > 0


def test_resized_images_are_reported_as_warning(tmp_path):
    from PIL import Image

    real, generated = _copy_demo(tmp_path)
    first = sorted(generated.glob("gen_*.png"))[0]
    Image.open(first).convert("L").resize((300, 300)).save(generated / "large.png")

    run = run_audit(tmp_path, "--real", str(real), "--generated", str(generated), "--groups", "folder", "-k", "image_size")

    assert run.verdict("image_size[generated]") == "warn"
    assert "large.png" in run.report.read_text()


def test_baseline_regression_fails(demo_run, tmp_path):
    import json

    accepted = demo_run.summary
    for check in accepted["checks"]:
        if check["name"] == "duplicate_rate":
            check["statistics"]["pair_fraction_excess"] -= 0.01
    accepted_path = tmp_path / "accepted.json"
    accepted_path.write_text(json.dumps(accepted))

    run = run_audit(
        tmp_path, "--baseline", str(accepted_path), "-k", "duplicate_rate",
        cache_dir=demo_run.report.parents[1] / "cache",
    )

    assert run.verdict("duplicate_rate[pixels]") == "fail", run.output
    assert "accepted run + tolerance" in run.output


def test_baseline_must_be_a_summary(tmp_path):
    bad = tmp_path / "accepted.json"
    bad.write_text('{"checks": []}')
    run = run_audit(tmp_path, "--baseline", str(bad))
    assert run.returncode == 4, run.output
    assert "schema_version" in run.output
    assert "Traceback" not in run.output


def test_junit_xml_carries_statistics(demo_run):
    junit = (demo_run.report.parent / "junit.xml").read_text()
    assert '<property name="statistic" value="auc"' in junit
    assert '<property name="verdict" value="fail"' in junit


def _thresholds_copy(tmp_path, old, new):
    text = (REPO / "thresholds.toml").read_text()
    assert old in text
    path = tmp_path / "thresholds.toml"
    path.write_text(text.replace(old, new).replace('"fixtures/', f'"{REPO}/fixtures/'))
    return path


def test_invalid_parameter_blocks_and_names_key(tmp_path):
    thresholds = _thresholds_copy(tmp_path, "min_similarity = 0.95", "min_similarity = 1.5")
    run = run_audit(tmp_path, "--thresholds", str(thresholds), "-k", "duplicate_rate")
    assert run.returncode == 1, run.output
    assert run.summary["blocked"] is True
    messages = [error["message"] for error in run.summary["errors"]]
    assert any("checks.duplicate_rate.params.min_similarity" in message for message in messages), messages
    assert "Traceback" not in run.output


def test_missing_check_table_stops_run(tmp_path):
    thresholds = _thresholds_copy(tmp_path, "[checks.nearest_real_distance]", "[checks.nearest_real_distance_off]")
    run = run_audit(tmp_path, "--thresholds", str(thresholds))
    assert run.returncode == 4, run.output
    assert "Traceback" not in run.output


def test_incomplete_groups_csv_stops_run(tmp_path):
    groups = tmp_path / "groups.csv"
    groups.write_text("file,patient_id\nLUNA16-559804568094/z_000.png,p1\n")
    run = run_audit(tmp_path, "--real", str(DEMO / "real"), "--generated", str(DEMO / "generated"), "--groups", str(groups))
    assert run.returncode == 4, run.output
    assert "groups.csv" in run.output
    assert "Traceback" not in run.output


def test_groups_inferred_without_groups(tmp_path):
    run = run_audit(
        tmp_path, "--real", str(DEMO / "real"), "--generated", str(DEMO / "generated"), "-k", "nearest_real_distance"
    )
    assert "grouped by pixel similarity" in run.output
    assert "pseudo-patients" in run.report.read_text()
    check = run.check("nearest_real_distance[pixels]")
    assert check["parameters"]["grouped"] is True
    assert run.summary["dataset"] == "generated"
