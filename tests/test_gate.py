import pytest

from synthgate.gate import Bound, ThresholdSpec, evaluate
from synthgate.result import CheckResult


def _result(**statistics):
    return CheckResult(
        check="separability_auc",
        statistic=next(iter(statistics)),
        statistics=statistics,
        n_real=10,
        n_generated=20,
        params={"seed": 0},
        baseline=0.5,
        baseline_kind="chance",
    )


def _spec(*bounds, severity="fail"):
    return ThresholdSpec(check="separability_auc", severity=severity, bounds=bounds)


def test_max_bound_passes_at_limit():
    verdict = evaluate(_result(auc=0.75), _spec(Bound("auc", "max", 0.75)))
    assert verdict.status == "pass"
    assert verdict.passed


def test_max_bound_fails_above_limit():
    verdict = evaluate(_result(auc=0.9), _spec(Bound("auc", "max", 0.75)))
    assert verdict.status == "fail"
    assert "auc <= 0.75: observed 0.9 [VIOLATED]" in verdict.message
    assert "n_real=10, n_generated=20" in verdict.message
    assert "baseline (chance): 0.5" in verdict.message


def test_min_bound_fails_below_limit():
    verdict = evaluate(_result(auc=0.4), _spec(Bound("auc", "min", 0.5)))
    assert verdict.status == "fail"


def test_warn_severity_turns_failure_into_warning():
    verdict = evaluate(_result(auc=0.9), _spec(Bound("auc", "max", 0.75), severity="warn"))
    assert verdict.status == "warn"
    assert not verdict.passed


def test_every_bound_must_hold():
    spec = _spec(Bound("auc", "max", 0.95), Bound("auc_std", "max", 0.01))
    verdict = evaluate(_result(auc=0.9, auc_std=0.05), spec)
    assert verdict.status == "fail"
    assert [outcome.passed for outcome in verdict.outcomes] == [True, False]


def test_unknown_statistic_is_rejected():
    with pytest.raises(ValueError, match=r"bound 'max_accuracy' must name a statistic.*\['auc'\]"):
        evaluate(_result(auc=0.9), _spec(Bound("accuracy", "max", 0.75)))


def test_spec_without_bounds_is_rejected():
    with pytest.raises(ValueError, match="at least one max_\\* or min_\\* bound"):
        evaluate(_result(auc=0.9), _spec())


def test_result_rejects_nan():
    with pytest.raises(ValueError, match=r"statistics\['auc'\] must be finite"):
        _result(auc=float("nan"))


def test_result_is_read_only():
    result = _result(auc=0.9)
    with pytest.raises(TypeError):
        result.statistics["auc"] = 0.1


def test_accepted_run_within_tolerance_passes():
    spec = ThresholdSpec("separability_auc", "fail", (Bound("auc", "max", 0.9),), baseline_tolerance=0.02)
    verdict = evaluate(_result(auc=0.81), spec, accepted={"auc": 0.8})
    assert verdict.status == "pass"
    assert len(verdict.outcomes) == 2


def test_regression_beyond_tolerance_fails():
    spec = ThresholdSpec("separability_auc", "fail", (Bound("auc", "max", 0.9),), baseline_tolerance=0.02)
    verdict = evaluate(_result(auc=0.85), spec, accepted={"auc": 0.8})
    assert verdict.status == "fail"
    assert "auc <= 0.82 (accepted run + tolerance): observed 0.85 [VIOLATED]" in verdict.message


def test_min_bound_ratchets_downwards():
    spec = ThresholdSpec("separability_auc", "fail", (Bound("auc", "min", 0.1),), baseline_tolerance=0.0)
    verdict = evaluate(_result(auc=0.4), spec, accepted={"auc": 0.5})
    assert verdict.status == "fail"


def test_accepted_run_without_statistic_is_ignored():
    spec = ThresholdSpec("separability_auc", "fail", (Bound("auc", "max", 0.9),))
    verdict = evaluate(_result(auc=0.85), spec, accepted={"other": 0.1})
    assert verdict.status == "pass"
    assert len(verdict.outcomes) == 1
