"""The statistical checks and their registry.

Each check module has one public function ``compute_<name>(real, generated, *, ...)`` that
returns a :class:`~synthgate.result.CheckResult`, and a ``STATISTICS`` dict naming every
statistic it reports. :data:`CHECKS` maps each check name to both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..result import CheckResult
from . import duplicate_rate, nearest_real_distance, separability_auc, texture_gap

__all__ = ["Check", "CHECKS"]


@dataclass(frozen=True)
class Check:
    """A registered check: its name, its ``compute_<name>`` function and its statistics.

    ``statistics`` maps each key of ``CheckResult.statistics`` to a one-line meaning that
    states the direction; ``thresholds.toml`` may bound any of them.
    """

    name: str
    compute: Callable[..., CheckResult]
    statistics: Mapping[str, str]


def _register(module, name: str) -> Check:
    return Check(
        name=name,
        compute=getattr(module, f"compute_{name}"),
        statistics=MappingProxyType(dict(module.STATISTICS)),
    )


CHECKS: Mapping[str, Check] = MappingProxyType(
    {
        name: _register(module, name)
        for name, module in (
            ("separability_auc", separability_auc),
            ("duplicate_rate", duplicate_rate),
            ("nearest_real_distance", nearest_real_distance),
            ("texture_gap", texture_gap),
        )
    }
)
