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
import warnings
from dataclasses import dataclass
from typing import Any

from .cache import FeatureCache
from .config import AuditConfig, DatasetConfig
from .dataset import ImageSet, load_image_set
from .encoders import get_encoder
from .encoders import unavailable_reason as encoder_unavailable_reason
from .errors import ConfigError, EncoderUnavailableError, SynthgateWarning
from .features import EXTRACTORS, compute_features, get_extractor
from .gate import Verdict, evaluate
from .groups import INFERRED_GROUP_SIMILARITY, infer_groups
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
        from its ``summary.json``. Each check must then not get worse than its accepted value
        by more than its ``baseline_tolerance``.
    encoder : str, optional
        An encoder that every check following ``--encoder`` runs on as well
        (``CheckSpec.follows_encoder_option``); it also draws the manifold view.
    threads : int, optional
        CPU threads of the encoders (torch); None leaves the ``threads`` key of each
        ``[encoders.<name>]`` table, else torch's default.
    """

    def __init__(
        self,
        dataset: DatasetConfig,
        config: AuditConfig,
        *,
        cache: FeatureCache,
        n_jobs: int = 1,
        accepted=None,
        encoder: str | None = None,
        threads: int | None = None,
    ):
        if encoder is not None:
            config.encoder_params(encoder)
        self.dataset = dataset
        self.config = config
        self.cache = cache
        self.n_jobs = n_jobs
        self.encoder = encoder
        self.threads = threads
        self.accepted = dict(accepted or {})
        self.verdicts: list[RecordedVerdict] = []
        self._image_sets: dict[str, ImageSet] = {}
        self._features: dict[tuple[str, str], Any] = {}
        self._extractors: dict[str, Any] = {}
        self._manifests: dict[str, Any] = {}
        self._real_groups: tuple[str, ...] | None = None
        self._manifold = None
        self.group_source: str | None = None

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

    def real_groups(self) -> tuple[str, ...]:
        """Return the patient group of each real image, inferring them when none are given.

        Without patient ids, slices are chained into pseudo-patients by pixel similarity
        (:func:`synthgate.groups.infer_groups`), with a warning, so that neighbouring slices of
        one scan never serve as each other's reference. ``group_source`` records which applies.
        """
        if self._real_groups is None:
            real = self.image_set("real")
            if real.groups is not None:
                self._real_groups = real.groups
                self.group_source = "given"
            else:
                self._real_groups = infer_groups(self.features("real", "pixels"))
                self.group_source = "inferred"
                message = (
                    f"no patient groups for the real set: {len(set(self._real_groups))} groups of "
                    f"{len(real)} slices were inferred by chaining slices with pixel cosine similarity "
                    f">= {INFERRED_GROUP_SIMILARITY}; give --groups or groups = ... for exact patients"
                )
                logger.warning(message)
                warnings.warn(message, SynthgateWarning, stacklevel=2)
        return self._real_groups

    def loaded_image_sets(self) -> dict:
        """Return the image sets loaded so far, by role, without loading any other."""
        return dict(self._image_sets)

    def is_encoder(self, features: str) -> bool:
        """True when ``features`` names an encoder rather than a built-in feature set."""
        return features not in EXTRACTORS

    def extractor(self, features: str):
        """Return the extractor or encoder called ``features`` (built once).

        Raises
        ------
        EncoderUnavailableError
            If ``features`` is an encoder whose optional packages are not installed.
        WeightsNotFoundError
            If the encoder's weights are in none of the places it looks.
        EncoderLoadError
            If the weights or the model config do not fit the encoder.
        """
        if features not in self._extractors:
            if self.is_encoder(features):
                params = self.config.encoder_params(features)
                # --threads takes precedence over the encoder's table, like every command-line option.
                if self.threads is not None:
                    params["threads"] = self.threads
                self._extractors[features] = get_encoder(features, **params)
            else:
                # Extractors that only accept one slice shape are built for the audit's image size.
                takes_shape = "shape" in inspect.signature(EXTRACTORS[features]).parameters
                params = {"shape": self.config.image_size} if takes_shape else {}
                self._extractors[features] = get_extractor(features, **params)
        return self._extractors[features]

    def features_of(self, check: str) -> tuple[str, ...]:
        """Return the feature sets and encoders ``check`` runs on in this session."""
        return self.config.features(check, self.dataset.name, encoder=self.encoder)

    def encoder_provenance(self) -> dict:
        """Return, for each encoder built so far, its model, weights (path and SHA-256) and preprocessing."""
        return {
            name: dict(extractor.provenance)
            for name, extractor in self._extractors.items()
            if self.is_encoder(name)
        }

    def features(self, role: str, features: str):
        """Return the feature matrix of ``role`` for the feature set or encoder ``features`` (computed once)."""
        key = (role, features)
        if key not in self._features:
            started = time.perf_counter()
            # An encoder runs in this process, on the threads torch is given, rather than
            # copying its model into worker processes. Its smaller batches keep the progress bar
            # and the cache up to date, because it embeds only about 20 slices per second.
            encoder = self.is_encoder(features)
            self._features[key] = compute_features(
                self.image_set(role), self.extractor(features), cache=self.cache,
                n_jobs=1 if encoder else self.n_jobs, batch_size=64 if encoder else 256,
            )
            logger.info("%s features of %s: %.1f s", features, role, time.perf_counter() - started)
        return self._features[key]

    def run(self, check: str, *, features: str | None = None, role: str | None = None) -> Verdict:
        """Compute ``check`` on this dataset, judge it against its thresholds and record the verdict.

        Feature checks compare the real and the generated set on ``features``. Image checks
        (``takes_images``) get both image sets, and integrity checks look at the one set named
        by ``role``.

        Raises
        ------
        SynthgateError
            For unusable input (degenerate data, invalid configuration); the plugin reports the
            message without a traceback.
        """
        spec = CHECK_SPECS[check]
        threshold = self.config.threshold(check, self.dataset.name)
        reason = self.unavailable_reason(check, features)
        if reason is not None:
            raise ConfigError(reason)
        started = time.perf_counter()

        try:
            result = self._compute(spec, threshold, features, role)
        except ValueError as error:
            if isinstance(error, ConfigError):
                raise
            # The validators name the parameter: when it is one set in thresholds.toml, the
            # user can fix it, so report the key instead of a traceback.
            configured = [name for name in threshold.params_dict if name in str(error)]
            if not configured:
                raise
            raise ConfigError(
                f"invalid value of {', '.join(f'checks.{check}.params.{name}' for name in configured)} "
                f"in {self.config.path} (or its dataset override): {error}"
            ) from None

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

    def manifold_features(self) -> str:
        """Return the feature set or encoder of the manifold view: ``--encoder`` or ``report.manifold_features``."""
        return self.encoder or self.config.report["manifold_features"]

    def manifold(self):
        """Return the manifold view of real against generated images and its separability (computed once).

        Returns
        -------
        tuple of (ManifoldView, CheckResult or None)
            The UMAP coordinates on :meth:`manifold_features`, and the separability_auc
            result on the same features: the recorded one when the check ran on them, else
            computed now without a verdict.

        Raises
        ------
        SynthgateError
            If the encoder or umap-learn is not installed, or the sets are too small.
        """
        if self._manifold is None:
            from .manifold import compute_manifold

            features = self.manifold_features()
            reason = self.unavailable_reason("separability_auc", features)
            if reason is not None:
                raise EncoderUnavailableError(reason)
            real, generated = self.features("real", features), self.features("generated", features)
            started = time.perf_counter()
            view = compute_manifold(real, generated)
            logger.info("manifold view on %s: %.1f s", features, time.perf_counter() - started)

            separability = next(
                (
                    recorded.verdict.result
                    for recorded in self.verdicts
                    if recorded.check == "separability_auc" and recorded.features == features
                ),
                None,
            )
            if separability is None:
                spec = CHECK_SPECS["separability_auc"]
                separability = self._compute(spec, self.config.threshold(spec.name, self.dataset.name), features, None)
            self._manifold = (view, separability)
        return self._manifold

    def _compute(self, spec, threshold, features, role):
        """Call the check's ``compute_<name>`` with its inputs, context and parameters."""
        if spec.takes_features:
            if features is None:
                raise ConfigError(f"{spec.name} needs a feature set; valid: {', '.join(self.features_of(spec.name))}")
            kwargs = self._context_arguments(spec.compute, features)
            kwargs.update(threshold.params_dict)
            return spec.compute(self.features("real", features), self.features("generated", features), **kwargs)
        if spec.takes_images:
            kwargs = self._context_arguments(spec.compute, None)
            kwargs.update(threshold.params_dict)
            return spec.compute(self.image_set("real"), self.image_set("generated"), **kwargs)
        kwargs = self._set_context_arguments(spec.compute, role)
        kwargs.update(threshold.params_dict)
        return spec.compute(self.image_set(role), **kwargs)

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

    def _context_arguments(self, compute, features: str | None) -> dict:
        """Fill the keyword arguments that come from the dataset rather than from thresholds.toml."""
        parameters = inspect.signature(compute).parameters
        real = self.image_set("real")
        generated = self.image_set("generated")
        available = {
            "real_groups": self.real_groups() if "real_groups" in parameters else None,
            "feature_names": tuple(self.extractor(features).feature_names) if features else None,
            "real_pixel_hashes": tuple(info.pixel_sha256 for info in real.infos),
            "generated_pixel_hashes": tuple(info.pixel_sha256 for info in generated.infos),
            "real_images": real,
            "generated_images": generated,
        }
        # The holdout set is loaded only for checks that take it, and only when it is configured.
        if "holdout" in parameters and self.dataset.holdout is not None and features:
            available["holdout"] = self.features("holdout", features)
        if "holdout_groups" in parameters and self.dataset.holdout is not None:
            available["holdout_groups"] = self.image_set("holdout").groups
        return {name: value for name, value in available.items() if name in parameters}

    def unavailable_reason(self, check: str, features: str | None = None) -> str | None:
        """Return why ``check`` cannot run on this dataset, or None.

        It cannot when an input it requires is missing, or when ``features`` is an encoder
        whose optional packages are not installed (the reason names the extra to install).
        """
        spec = CHECK_SPECS[check]
        name = self.dataset.name
        if features is not None and self.is_encoder(features):
            kind = self.config.encoder_params(features).get("kind", features)
            reason = encoder_unavailable_reason(kind)
            if reason is not None:
                return reason
        if "holdout" in spec.requires and self.dataset.holdout is None:
            return (
                f"{check} needs a holdout set (real images NOT used to train the generator): add "
                f'holdout = "<folder>" to [datasets.{name}] in thresholds.toml, or pass --holdout DIR with --real'
            )
        if "groups" in spec.requires and self.image_set("real").groups is None:
            return (
                f"{check} needs the patient of each real image: add groups = \"folder\" (one folder per "
                f"patient) or a CSV file,patient_id to [datasets.{name}] in thresholds.toml, or pass --groups"
            )
        return None
