"""Compare a check's result with its thresholds: the one place where pass or fail is decided."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .result import CheckResult

__all__ = ["Bound", "ThresholdSpec", "BoundOutcome", "Verdict", "evaluate", "SEVERITIES"]

SEVERITIES = ("fail", "warn")


@dataclass(frozen=True)
class Bound:
    """One limit on one statistic: ``statistic <= limit`` (``max``) or ``>= limit`` (``min``)."""

    statistic: str
    kind: Literal["max", "min"]
    limit: float

    @property
    def key(self) -> str:
        """The key that sets this bound in ``thresholds.toml``, e.g. ``max_auc``."""
        return f"{self.kind}_{self.statistic}"

    def describe(self) -> str:
        operator = "<=" if self.kind == "max" else ">="
        return f"{self.statistic} {operator} {self.limit:g}"


@dataclass(frozen=True)
class ThresholdSpec:
    """The thresholds of one check for one dataset, as read from ``thresholds.toml``.

    Attributes
    ----------
    check : str
        The check's name.
    severity : {'fail', 'warn'}
        ``fail`` blocks the release (non-zero exit status); ``warn`` is reported only.
    bounds : tuple of Bound
        Every limit; a result passes when it meets all of them.
    source, rationale : str
        Where each number comes from and why it is defensible; both are shown in the report.
    params : dict
        Keyword arguments for the check's ``compute_*`` function.
    """

    check: str
    severity: Literal["fail", "warn"]
    bounds: tuple[Bound, ...]
    source: str = ""
    rationale: str = ""
    params: tuple[tuple[str, object], ...] = ()

    @property
    def params_dict(self) -> dict:
        return dict(self.params)


@dataclass(frozen=True)
class BoundOutcome:
    """One bound applied to one observed value."""

    bound: Bound
    observed: float
    passed: bool


@dataclass(frozen=True)
class Verdict:
    """The judged result of one check.

    ``status`` is ``"pass"``, ``"warn"`` (a failed check whose severity is ``warn``) or
    ``"fail"`` (a failed check whose severity is ``fail``). Only ``"fail"`` fails the run.
    """

    result: CheckResult
    spec: ThresholdSpec
    outcomes: tuple[BoundOutcome, ...]
    status: Literal["pass", "warn", "fail"]

    def __repr__(self) -> str:
        return f"Verdict({self.result.check}: {self.status})"

    @property
    def passed(self) -> bool:
        """Whether every bound is met, whatever the severity."""
        return all(outcome.passed for outcome in self.outcomes)

    @property
    def message(self) -> str:
        """One line per bound: observed value, limit, baseline and sample sizes."""
        result = self.result
        lines = [
            f"{result.check}: {self.status.upper()} (severity {self.spec.severity}, "
            f"n_real={result.n_real}, n_generated={result.n_generated})"
        ]
        meanings = _statistic_meanings(result.check)
        for outcome in self.outcomes:
            mark = "ok" if outcome.passed else "VIOLATED"
            meaning = meanings.get(outcome.bound.statistic, "")
            lines.append(
                f"  {outcome.bound.describe()}: observed {outcome.observed:.4g} [{mark}]"
                + (f" ({meaning})" if meaning else "")
            )
        if result.baseline is not None:
            lines.append(f"  baseline ({result.baseline_kind}): {result.baseline:.4g}")
        if result.interval is not None:
            low, high = result.interval
            lines.append(f"  {result.statistic} {result.interval_kind}: [{low:.4g}, {high:.4g}]")
        return "\n".join(lines)


def _statistic_meanings(check: str) -> dict:
    """Return the one-line meaning of each statistic of ``check``, or {} for an unregistered check."""
    from .registry import CHECK_SPECS

    spec = CHECK_SPECS.get(check)
    return dict(spec.statistics) if spec is not None else {}


def evaluate(result: CheckResult, spec: ThresholdSpec) -> Verdict:
    """Judge ``result`` against every bound in ``spec``.

    Raises
    ------
    ValueError
        If ``spec`` belongs to another check, has no bound, or bounds a statistic that the
        result does not report.
    """
    if spec.check != result.check:
        raise ValueError(f"spec.check must be {result.check!r}; got {spec.check!r}")
    if not spec.bounds:
        raise ValueError(f"thresholds for {spec.check!r} must set at least one max_* or min_* bound")

    outcomes = []
    for bound in spec.bounds:
        if bound.statistic not in result.statistics:
            raise ValueError(
                f"bound {bound.key!r} must name a statistic of {result.check!r}; "
                f"valid statistics: {sorted(result.statistics)}"
            )
        observed = float(result.statistics[bound.statistic])
        if bound.kind == "max":
            passed = observed <= bound.limit
        else:
            passed = observed >= bound.limit
        outcomes.append(BoundOutcome(bound=bound, observed=observed, passed=passed))

    if all(outcome.passed for outcome in outcomes):
        status = "pass"
    else:
        status = spec.severity
    return Verdict(result=result, spec=spec, outcomes=tuple(outcomes), status=status)
