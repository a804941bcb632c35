"""The value that every check returns.

A check computes numbers and evidence; it never decides pass or fail. Deciding happens in
:mod:`synthgate.gate`, so that every check is judged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

__all__ = ["CheckResult", "Evidence", "ImagePair"]


@dataclass(frozen=True)
class ImagePair:
    """A generated image and the real image it is compared with.

    ``generated`` and ``real`` are row indices into the arrays given to the check; the audit
    layer maps them to file names. ``score`` is the check's own measure for the pair (a
    distance or a similarity, named by ``score_name``).
    """

    generated: int
    real: int
    score: float
    score_name: str


@dataclass(frozen=True)
class Evidence:
    """What a reviewer needs to see to trust a verdict.

    Attributes
    ----------
    pairs : tuple of ImagePair
        The most suspicious generated/real pairs, worst first.
    clusters : tuple of tuple of int
        Groups of generated row indices, largest first (for example near-duplicate clusters).
    distributions : mapping of str to ndarray of shape (n,)
        Samples to plot against the threshold, e.g. ``{"generated": d_gen, "real": d_real}``.
    table : tuple of mapping
        Rows of a small table (for example the worst features), each a mapping column -> value.
    images : tuple of int
        Generated row indices worth showing on their own (for example outliers).
    generated_pairs : tuple of (int, int, float)
        Pairs of generated row indices with their similarity, most similar first.
    """

    pairs: tuple[ImagePair, ...] = ()
    clusters: tuple[tuple[int, ...], ...] = ()
    distributions: Mapping[str, np.ndarray] = field(default_factory=dict)
    table: tuple[Mapping[str, Any], ...] = ()
    images: tuple[int, ...] = ()
    generated_pairs: tuple[tuple[int, int, float], ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one pair of image sets.

    Attributes
    ----------
    check : str
        The check's name, e.g. ``"separability_auc"``.
    statistic : str
        Name of the headline statistic, a key of ``statistics``.
    statistics : mapping of str to float
        Every number the check reports that a threshold may bound, all finite.
    interval : tuple of (float, float) or None
        Uncertainty of the headline statistic, of the kind named by ``interval_kind``.
    interval_kind : str
        For example ``"95% bootstrap CI"`` or ``"min-max over 5 repeats"``.
    baseline : float or None
        The same statistic computed real-vs-real, the reference point a reader compares with.
    baseline_kind : str
        How the baseline was computed, in one phrase.
    n_real, n_generated : int
        Sample sizes actually used.
    params : mapping
        The effective parameters, including the seed and every default that was applied.
    evidence : Evidence
        Offending pairs, clusters and distributions for the report.
    """

    check: str
    statistic: str
    statistics: Mapping[str, float]
    n_real: int
    n_generated: int
    params: Mapping[str, Any]
    interval: tuple[float, float] | None = None
    interval_kind: str = ""
    baseline: float | None = None
    baseline_kind: str = ""
    evidence: Evidence = field(default_factory=Evidence)

    def __post_init__(self):
        if self.statistic not in self.statistics:
            raise ValueError(
                f"statistic must be a key of statistics {sorted(self.statistics)}; got {self.statistic!r}"
            )
        for name, value in self.statistics.items():
            if not np.isfinite(value):
                raise ValueError(f"statistics[{name!r}] must be finite; got {value!r}")
        object.__setattr__(self, "statistics", MappingProxyType(dict(self.statistics)))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def value(self) -> float:
        """The headline statistic."""
        return float(self.statistics[self.statistic])
