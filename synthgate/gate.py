"""Compare a check's result with its thresholds: the one place where pass or fail is decided."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .result import CheckResult

__all__ = ["Bound", "ThresholdSpec", "BoundOutcome", "Verdict", "evaluate", "SEVERITIES"]

SEVERITIES = ("fail", "warn")
# Offending files named in a failure message; the report lists more.
MESSAGE_FILES = 5


@dataclass(frozen=True)
class Bound:
    """One limit on one statistic: ``statistic <= limit`` (``max``) or ``>= limit`` (``min``)."""

    statistic: str
    kind: Literal["max", "min"]
    limit: float
    origin: str = "threshold"

    @property
    def key(self) -> str:
        """The key that sets this bound in ``thresholds.toml``, e.g. ``max_auc``."""
        return f"{self.kind}_{self.statistic}"

    def describe(self) -> str:
        operator = "<=" if self.kind == "max" else ">="
        suffix = "" if self.origin == "threshold" else f" ({self.origin})"
        return f"{self.statistic} {operator} {self.limit:g}{suffix}"


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
    baseline_tolerance : float
        How much worse than an accepted earlier run each bounded statistic may get, in the
        statistic's own units (used only with an accepted run, see :func:`evaluate`).
    """

    check: str
    severity: Literal["fail", "warn"]
    bounds: tuple[Bound, ...]
    source: str = ""
    rationale: str = ""
    params: tuple[tuple[str, object], ...] = ()
    baseline_tolerance: float = 0.0

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
        role = result.params.get("role")
        if role is not None:
            sizes = f"{role} set, {max(result.n_real, result.n_generated)} files"
        else:
            sizes = f"n_real={result.n_real}, n_generated={result.n_generated}"
        lines = [f"{result.check}: {self.status.upper()} (severity {self.spec.severity}, {sizes})"]
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
        files = [row for row in result.evidence.table if "file" in row]
        if files and not self.passed:
            listed = ", ".join(
                str(row["file"]) + (f" ({row['reason']})" if row.get("reason") else "") for row in files[:MESSAGE_FILES]
            )
            more = f" and {len(files) - MESSAGE_FILES} more listed in the report" if len(files) > MESSAGE_FILES else ""
            lines.append(f"  files: {listed}{more}")
        return "\n".join(lines)


def _statistic_meanings(check: str) -> dict:
    """Return the one-line meaning of each statistic of ``check``, or {} for an unregistered check."""
    from .registry import CHECK_SPECS

    spec = CHECK_SPECS.get(check)
    return dict(spec.statistics) if spec is not None else {}


def evaluate(result: CheckResult, spec: ThresholdSpec, accepted=None) -> Verdict:
    """Judge ``result`` against every bound in ``spec`` and, if given, an accepted earlier run.

    Parameters
    ----------
    result : CheckResult
        The numbers to judge.
    spec : ThresholdSpec
        The thresholds.
    accepted : mapping of str to float, optional
        The statistics of the same check in an accepted earlier run (a baseline). Every
        statistic that ``spec`` bounds must then also stay within
        ``spec.baseline_tolerance`` of its accepted value, in the bound's direction, so a
        team can ratchet quality up. Statistics missing from ``accepted`` are not compared.

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
        outcomes.append(_apply(bound, result))

    for bound in spec.bounds if accepted else ():
        if bound.statistic not in accepted:
            continue
        previous = float(accepted[bound.statistic])
        if bound.kind == "max":
            ratchet = Bound(bound.statistic, "max", previous + spec.baseline_tolerance, "accepted run + tolerance")
        else:
            ratchet = Bound(bound.statistic, "min", previous - spec.baseline_tolerance, "accepted run - tolerance")
        outcomes.append(_apply(ratchet, result))

    if all(outcome.passed for outcome in outcomes):
        status = "pass"
    else:
        status = spec.severity
    return Verdict(result=result, spec=spec, outcomes=tuple(outcomes), status=status)


def _apply(bound: Bound, result: CheckResult) -> BoundOutcome:
    observed = float(result.statistics[bound.statistic])
    passed = observed <= bound.limit if bound.kind == "max" else observed >= bound.limit
    return BoundOutcome(bound=bound, observed=observed, passed=passed)
