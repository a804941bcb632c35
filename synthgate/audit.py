"""Run checks on one dataset: load each image set once, compute each feature set once, judge results.

:class:`AuditSession` is what the pytest plugin hands to the audit tests. It is also usable on its
own, for example from a notebook::

    session = AuditSession(config.dataset("demo"), config, cache=FeatureCache(None))
    verdict = session.run("separability_auc", features="texture")
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any

from .cache import FeatureCache
from .config import AuditConfig, DatasetConfig
from .dataset import ImageSet, load_image_set
from .errors import ConfigError
from .features import compute_features, get_extractor
from .gate import Verdict, evaluate
from .manifest import build_manifest
from .registry import CHECK_SPECS

__all__ = ["AuditSession", "RecordedVerdict"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedVerdict:
    """A verdict together with where it came from, for the report and ``summary.json``."""

    check: str
    category: str
    features: str | None
    role: str | None
    verdict: Verdict
    runtime_s: float

    @property
    def label(self) -> str:
        """The check name with its feature set or role, e.g. ``separability_auc[texture]``."""
        return _label(self.check, self.features or self.role)


def _label(check: str, qualifier: str | None) -> str:
    return f"{check}[{qualifier}]" if qualifier else check


class AuditSession:
    """The state of one audit run: the dataset, its loaded sets, cached features and verdicts.

    Parameters
    ----------
    dataset : DatasetConfig
        The folders to audit.
    config : AuditConfig
        Thresholds and check parameters.
    cache : FeatureCache
        Where decode information and features are cached; ``FeatureCache(None)`` disables it.
    n_jobs : int, default=1
        Worker processes for feature extraction.
    accepted : mapping of str to mapping, optional
        Statistics of an accepted earlier run by label (``check[features-or-role]``), read
        from its ``summary.json``; each check must then not get worse than its accepted value
        by more than its ``baseline_tolerance``.
    """

    def __init__(
        self,
        dataset: DatasetConfig,
        config: AuditConfig,
        *,
        cache: FeatureCache,
        n_jobs: int = 1,
        accepted=None,
    ):
        self.dataset = dataset
        self.config = config
        self.cache = cache
        self.n_jobs = n_jobs
        self.accepted = dict(accepted or {})
        self.verdicts: list[RecordedVerdict] = []
        self._image_sets: dict[str, ImageSet] = {}
        self._features: dict[tuple[str, str], Any] = {}
        self._extractors: dict[str, Any] = {}
        self._manifests: dict[str, Any] = {}

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles this dataset has: ``real``, ``generated`` and, if configured, ``holdout``."""
        roles = ["real", "generated"]
        if self.dataset.holdout is not None:
            roles.append("holdout")
        return tuple(roles)

    def image_set(self, role: str) -> ImageSet:
        """Load (once) and return the image set of ``role``."""
        if role not in self.roles:
            raise ConfigError(f"role must be one of {', '.join(self.roles)}; got {role!r}")
        if role not in self._image_sets:
            groups = self.dataset.groups if role == "real" else None
            if role == "holdout":
                groups = self.dataset.holdout_groups
            started = time.perf_counter()
            self._image_sets[role] = load_image_set(
                self.dataset.folder(role),
                role=role,
                pattern=self.dataset.pattern,
                size=self.config.image_size,
                groups=groups,
                cache=self.cache,
            )
            logger.info(
                "loaded %d %s images (%d failed) in %.1f s",
                len(self._image_sets[role]), role, len(self._image_sets[role].failures),
                time.perf_counter() - started,
            )
        return self._image_sets[role]

    def loaded_image_sets(self) -> dict:
        """Return the image sets loaded so far, by role, without loading any other."""
        return dict(self._image_sets)

    def extractor(self, features: str):
        if features not in self._extractors:
            self._extractors[features] = get_extractor(features)
        return self._extractors[features]

    def features(self, role: str, features: str):
        """Return the feature matrix of ``role`` for the feature set ``features`` (computed once)."""
        key = (role, features)
        if key not in self._features:
            started = time.perf_counter()
            self._features[key] = compute_features(
                self.image_set(role), self.extractor(features), cache=self.cache, n_jobs=self.n_jobs
            )
            logger.info("%s features of %s: %.1f s", features, role, time.perf_counter() - started)
        return self._features[key]

    def run(self, check: str, *, features: str | None = None, role: str | None = None) -> Verdict:
        """Compute ``check`` on this dataset, judge it against its thresholds and record the verdict.

        Feature checks compare the real and the generated set on ``features``; integrity checks
        look at the one set named by ``role``.

        Raises
        ------
        SynthgateError
            For unusable input (degenerate data, invalid configuration); the plugin reports the
            message without a traceback.
        """
        spec = CHECK_SPECS[check]
        threshold = self.config.threshold(check, self.dataset.name)
        started = time.perf_counter()

        if spec.takes_features:
            if features is None:
                raise ConfigError(f"{check} needs a feature set; valid: {', '.join(self.config.features(check))}")
            kwargs = self._context_arguments(spec.compute, features)
            kwargs.update(threshold.params_dict)
            result = spec.compute(
                self.features("real", features), self.features("generated", features), **kwargs
            )
        else:
            kwargs = self._set_context_arguments(spec.compute, role)
            kwargs.update(threshold.params_dict)
            result = spec.compute(self.image_set(role), **kwargs)

        label = _label(check, features or role)
        verdict = evaluate(result, threshold, accepted=self.accepted.get(label))
        self.verdicts.append(
            RecordedVerdict(
                check=check,
                category=spec.category,
                features=features,
                role=role,
                verdict=verdict,
                runtime_s=time.perf_counter() - started,
            )
        )
        return verdict

    def manifest(self, role: str):
        """Return the per-image manifest of ``role`` (built once); see :mod:`synthgate.manifest`."""
        if role not in self._manifests:
            intensity = compute_features(
                self.image_set(role), self.extractor("intensity"), cache=self.cache, n_jobs=self.n_jobs
            )
            self._manifests[role] = build_manifest(self.image_set(role), intensity)
        return self._manifests[role]

    def _set_context_arguments(self, compute, role: str) -> dict:
        """Fill the keyword arguments of a check on one image set that come from the dataset."""
        parameters = inspect.signature(compute).parameters
        kwargs = {}
        if "expected" in parameters:
            kwargs["expected"] = self.dataset.expected_counts[role]
        if "manifest" in parameters:
            kwargs["manifest"] = self.manifest(role)
        if "real_manifest" in parameters:
            kwargs["real_manifest"] = self.manifest("real")
        return kwargs

    def _context_arguments(self, compute, features: str) -> dict:
        """Fill the keyword arguments that come from the dataset rather than from thresholds.toml."""
        parameters = inspect.signature(compute).parameters
        real = self.image_set("real")
        generated = self.image_set("generated")
        available = {
            "real_groups": real.groups,
            "feature_names": tuple(self.extractor(features).feature_names),
            "real_pixel_hashes": tuple(info.pixel_sha256 for info in real.infos),
            "generated_pixel_hashes": tuple(info.pixel_sha256 for info in generated.infos),
        }
        return {name: value for name, value in available.items() if name in parameters}
