import inspect
from pathlib import Path

import pytest

from synthgate.config import load_config
from synthgate.errors import ConfigError
from synthgate.registry import CHECK_SPECS, CONTEXT_ARGUMENTS

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """
[datasets.toy]
real = "real"
generated = "generated"

[checks.separability_auc]
severity = "fail"
features = ["texture"]
max_auc = 0.75
"""


def _write(tmp_path, text):
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    return path


def test_project_thresholds_file_is_valid():
    config = load_config(REPO / "thresholds.toml")
    assert "demo" in config.datasets
    assert "gen2025" in config.datasets
    assert config.default_dataset == "demo"


def test_project_thresholds_cover_every_check():
    config = load_config(REPO / "thresholds.toml")
    assert set(config.checks) == set(CHECK_SPECS)


def test_project_thresholds_state_source_and_rationale():
    config = load_config(REPO / "thresholds.toml")
    for check, table in config.checks.items():
        assert table.get("source", "").strip(), f"{check} has no source"
        assert table.get("rationale", "").strip(), f"{check} has no rationale"
        assert "PROVISIONAL" not in table["rationale"], f"{check} rationale is a placeholder"


def test_every_configurable_parameter_has_a_default():
    for name, spec in CHECK_SPECS.items():
        for parameter in inspect.signature(spec.compute).parameters.values():
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name not in CONTEXT_ARGUMENTS:
                assert parameter.default is not inspect.Parameter.empty, f"{name}.{parameter.name}"


def test_paths_are_relative_to_the_file(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    assert config.dataset("toy").real == (tmp_path / "real").resolve()


def test_dataset_override_replaces_one_key(tmp_path):
    text = MINIMAL + '\n[datasets.toy.checks.separability_auc]\nseverity = "warn"\n'
    config = load_config(_write(tmp_path, text))
    spec = config.threshold("separability_auc", "toy")
    assert spec.severity == "warn"
    assert spec.bounds[0].limit == 0.75


def test_unknown_dataset_lists_known_ones(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match=r"unknown dataset 'gen2024'.*known datasets: toy"):
        config.dataset("gen2024")


def test_unknown_check_key_is_named(tmp_path):
    text = MINIMAL.replace("max_auc = 0.75", "max_auc = 0.75\nmax_acu = 0.8")
    with pytest.raises(ConfigError, match=r"unknown key checks\.separability_auc\.max_acu \(did you mean 'max_auc'\?\)"):
        load_config(_write(tmp_path, text))


def test_unknown_check_lists_valid_checks(tmp_path):
    text = MINIMAL + '\n[checks.separability]\nseverity = "fail"\n'
    with pytest.raises(ConfigError, match=r"unknown check 'checks\.separability'.*valid checks: .*separability_auc"):
        load_config(_write(tmp_path, text))


def test_threshold_of_wrong_type_is_named(tmp_path):
    text = MINIMAL.replace("max_auc = 0.75", 'max_auc = "0.75"')
    with pytest.raises(ConfigError, match=r"checks\.separability_auc\.max_auc must be a finite number; got '0\.75' \(str\)"):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_infinite_or_nan_bound_is_rejected(tmp_path, value):
    text = MINIMAL.replace("max_auc = 0.75", f"max_auc = {value}")
    with pytest.raises(ConfigError, match=r"max_auc must be a finite number"):
        load_config(_write(tmp_path, text))


def test_parameter_of_wrong_type_is_named(tmp_path):
    text = MINIMAL + '\n[checks.separability_auc.params]\nn_repeats = "five"\n'
    with pytest.raises(ConfigError, match=r"params\.n_repeats must be of type int"):
        load_config(_write(tmp_path, text))


def test_unknown_parameter_lists_valid_ones(tmp_path):
    text = MINIMAL + "\n[checks.separability_auc.params]\nn_repeat = 3\n"
    with pytest.raises(ConfigError, match=r"unknown parameter .*n_repeat \(did you mean 'n_repeats'\?\)"):
        load_config(_write(tmp_path, text))


def test_context_argument_is_not_configurable(tmp_path):
    text = MINIMAL + '\n[checks.separability_auc.params]\nreal_groups = "x"\n'
    with pytest.raises(ConfigError, match="unknown parameter"):
        load_config(_write(tmp_path, text))


def test_invalid_severity_lists_options(tmp_path):
    text = MINIMAL.replace('severity = "fail"', 'severity = "error"')
    with pytest.raises(ConfigError, match=r"severity must be one of fail, warn; got 'error'"):
        load_config(_write(tmp_path, text))


def test_check_without_bound_is_rejected(tmp_path):
    text = MINIMAL.replace("max_auc = 0.75", "")
    with pytest.raises(ConfigError, match="must set at least one bound"):
        load_config(_write(tmp_path, text))


def test_unknown_feature_set_is_rejected(tmp_path):
    text = MINIMAL.replace('["texture"]', '["inception"]')
    with pytest.raises(ConfigError, match=r"features must be a non-empty list of pixels, texture.*biomedclip"):
        load_config(_write(tmp_path, text))


def test_missing_folder_key_is_named(tmp_path):
    text = MINIMAL.replace('generated = "generated"', "")
    with pytest.raises(ConfigError, match=r"datasets\.toy\.generated is missing"):
        load_config(_write(tmp_path, text))


def test_invalid_toml_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(_write(tmp_path, "[checks\n"))


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="thresholds file not found"):
        load_config(tmp_path / "nope.toml")
