"""Read and validate ``thresholds.toml``: the datasets and the thresholds of every check.

The file has two kinds of tables::

    [checks.<check>]                 # defaults for every dataset
    severity = "fail"                # or "warn"
    max_<statistic> = 0.8            # and/or min_<statistic>; at least one bound
    baseline_tolerance = 0.02        # with --baseline: how much worse than the accepted run
    features = ["texture", "pixels"] # feature sets or encoders the check runs on, where it takes features
    encoder = "efficientnet_lite0"   # optional: one more encoder to run an embedding check on
    source = "..."                   # where the number comes from
    rationale = "..."                # why it is defensible
    [checks.<check>.params]          # keyword arguments of compute_<check>
    seed = 0

    [datasets.<name>]
    real = "path/to/real"            # relative to this file
    generated = "path/to/generated"
    holdout = "path/to/holdout"      # optional: real images NOT used for training
    pattern = "**/*.png"             # optional
    groups = "folder"                # optional: "folder" or a CSV (file, patient_id) for real
    holdout_groups = "folder"        # optional, the same for the holdout set
    expected_counts = { real = 700, generated = 7000 }   # optional
    [datasets.<name>.checks.<check>] # optional per-dataset overrides, same keys as [checks.<check>]

and two optional ones::

    [encoders.<name>]                # weights of a built-in encoder, or a new encoder of a kind
    kind = "open_clip"               # required for a name that is not built in
    model = "ViT-B-16"               # open_clip architecture or hf-hub id
    weights = "models/ckpt.pt"       # local file or folder, relative to this file

    [report]
    manifold = true                  # the UMAP view of real against generated images
    manifold_features = "pixels"     # the feature set or encoder it is drawn on

Every key is checked: an unknown key, a wrong type, an unknown check, statistic or parameter is a
:class:`~synthgate.errors.ConfigError` that names the key and lists what is valid.
"""

from __future__ import annotations

import difflib
import inspect
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .encoders import ENCODER_KINDS, ENCODER_NAMES, check_encoder_params
from .errors import ConfigError
from .gate import SEVERITIES, Bound, ThresholdSpec
from .registry import CHECK_SPECS, CONTEXT_ARGUMENTS, FEATURE_SETS

__all__ = ["AuditConfig", "DatasetConfig", "load_config", "folder_dataset", "DEFAULT_PATTERN"]

DEFAULT_PATTERN = "**/*.png"
ROLES = ("real", "generated", "holdout")
_DATASET_KEYS = {
    "real", "generated", "holdout", "pattern", "groups", "holdout_groups", "expected_counts",
    "checks", "description",
}
_CHECK_KEYS = {"severity", "source", "rationale", "params", "features", "encoder", "baseline_tolerance"}
_TOP_KEYS = {"checks", "datasets", "audit", "encoders", "report"}
_AUDIT_KEYS = {"default_dataset", "image_size"}
_ENCODER_KEYS = {"kind", "model", "weights", "batch_size", "threads"}
_REPORT_KEYS = {"manifold", "manifold_features"}
DEFAULT_REPORT = {"manifold": True, "manifold_features": "pixels"}


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset to audit: its folders (absolute), patient groups and check thresholds."""

    name: str
    real: Path
    generated: Path
    holdout: Path | None = None
    pattern: str = DEFAULT_PATTERN
    groups: str | Path | None = None
    holdout_groups: str | Path | None = None
    expected_counts: Mapping[str, int] = field(default_factory=dict)
    description: str = ""

    def folder(self, role: str) -> Path | None:
        return {"real": self.real, "generated": self.generated, "holdout": self.holdout}[role]


@dataclass(frozen=True)
class AuditConfig:
    """The parsed ``thresholds.toml``."""

    path: Path
    datasets: Mapping[str, DatasetConfig]
    checks: Mapping[str, Mapping[str, Any]]
    dataset_checks: Mapping[str, Mapping[str, Mapping[str, Any]]]
    default_dataset: str | None
    image_size: tuple[int, int]
    encoders: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    report: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_REPORT))

    def dataset(self, name: str | None) -> DatasetConfig:
        """Return the dataset called ``name``, or raise ConfigError listing the known names."""
        if name is None:
            raise ConfigError(
                f"no dataset chosen: pass --dataset NAME (known datasets: {', '.join(sorted(self.datasets)) or 'none'}) "
                f"or set audit.default_dataset in {self.path}"
            )
        if name not in self.datasets:
            raise ConfigError(
                f"unknown dataset {name!r} in {self.path}; known datasets: "
                f"{', '.join(sorted(self.datasets))}. Add a [datasets.{name}] table or pass "
                "--real DIR --generated DIR."
            )
        return self.datasets[name]

    def threshold(self, check: str, dataset: str | None = None) -> ThresholdSpec:
        """Return the thresholds of ``check``, with the overrides of ``dataset`` applied."""
        if check not in self.checks:
            raise ConfigError(
                f"no [checks.{check}] table in {self.path}; configured checks: {', '.join(sorted(self.checks))}"
            )
        merged = dict(self.checks[check])
        override = self.dataset_checks.get(dataset or "", {}).get(check, {})
        params = dict(merged.get("params", {}))
        params.update(override.get("params", {}))
        merged.update(override)
        merged["params"] = params
        return _threshold_spec(check, merged)

    def features(self, check: str, dataset: str | None = None, *, encoder: str | None = None) -> tuple[str, ...]:
        """Return the feature sets and encoders ``check`` runs on (empty for checks that take no features).

        That is its ``features`` list, then its ``encoder``, then ``encoder`` (the command
        line's ``--encoder``) when the check follows that option, each once.
        """
        override = self.dataset_checks.get(dataset or "", {}).get(check, {})
        table = {**self.checks.get(check, {}), **override}
        names = list(table.get("features", ()))
        follows = check in CHECK_SPECS and CHECK_SPECS[check].follows_encoder_option
        for extra in (table.get("encoder"), encoder if follows else None):
            if extra is not None and extra not in names:
                names.append(extra)
        return tuple(names)

    def encoder_names(self) -> tuple[str, ...]:
        """Return the built-in encoders and those defined in ``[encoders.<name>]`` tables."""
        return tuple(dict.fromkeys((*ENCODER_NAMES, *self.encoders)))

    def encoder_params(self, name: str) -> dict:
        """Return the keyword arguments of :func:`synthgate.encoders.get_encoder` for ``name``.

        Raises
        ------
        ConfigError
            If ``name`` is neither built in nor defined in thresholds.toml.
        """
        if name not in self.encoder_names():
            raise ConfigError(
                f"encoder {name!r} is not a known encoder{_suggest(name, self.encoder_names())}; valid: "
                f"{', '.join(self.encoder_names())}, or a name defined in an [encoders.<name>] table of {self.path}"
            )
        return dict(self.encoders.get(name, {}))


def load_config(path: str | Path) -> AuditConfig:
    """Read ``path`` and validate every key.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid TOML, or any key or value is invalid. The message
        names the file and the dotted key.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"thresholds file not found: {path}; pass --thresholds FILE")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None

    _reject_unknown(document, _TOP_KEYS, "", path)
    audit = _table(document, "audit", "", path)
    _reject_unknown(audit, _AUDIT_KEYS, "audit.", path)
    image_size = _image_size(audit.get("image_size", [256, 256]), path)

    encoders = {
        name: _encoder_table(name, table, path) for name, table in _table(document, "encoders", "", path).items()
    }
    encoder_names = tuple(dict.fromkeys((*ENCODER_NAMES, *encoders)))
    report = _report_table(_table(document, "report", "", path), encoder_names, path)

    checks = {}
    for check, table in _table(document, "checks", "", path).items():
        checks[check] = _check_table(check, table, f"checks.{check}", path, require_bound=True, encoders=encoder_names)

    datasets = {}
    dataset_checks = {}
    for name, table in _table(document, "datasets", "", path).items():
        key = f"datasets.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {key} must be a table; got {table!r}")
        _reject_unknown(table, _DATASET_KEYS, f"{key}.", path)
        datasets[name] = _dataset(name, table, path.parent, key, path)
        overrides = {}
        for check, override in _table(table, "checks", f"{key}.", path).items():
            if check not in checks:
                raise ConfigError(
                    f"{path}: {key}.checks.{check} overrides a check with no [checks.{check}] table; "
                    f"configured checks: {', '.join(sorted(checks))}"
                )
            overrides[check] = _check_table(
                check, override, f"{key}.checks.{check}", path, require_bound=False, encoders=encoder_names
            )
        dataset_checks[name] = overrides

    if "default_dataset" in audit:
        default_dataset = audit["default_dataset"]
        if default_dataset not in datasets:
            raise ConfigError(
                f"{path}: audit.default_dataset must be one of {sorted(datasets)}; got {default_dataset!r}"
            )
    else:
        default_dataset = "demo" if "demo" in datasets else None

    return AuditConfig(
        path=path,
        datasets=datasets,
        checks=checks,
        dataset_checks=dataset_checks,
        default_dataset=default_dataset,
        image_size=image_size,
        encoders=encoders,
        report=report,
    )


def folder_dataset(
    real: str | Path,
    generated: str | Path,
    *,
    holdout: str | Path | None = None,
    groups: str | None = None,
    pattern: str = DEFAULT_PATTERN,
    name: str = "custom",
) -> DatasetConfig:
    """Build a dataset from folders given on the command line (paths relative to the working directory)."""
    if groups is not None and groups != "folder":
        groups = Path(groups).resolve()
    return DatasetConfig(
        name=name,
        real=Path(real).resolve(),
        generated=Path(generated).resolve(),
        holdout=Path(holdout).resolve() if holdout is not None else None,
        pattern=pattern,
        groups=groups,
        holdout_groups="folder" if groups == "folder" else None,
    )


def _dataset(name, table, base, key, path):
    for required in ("real", "generated"):
        if required not in table:
            raise ConfigError(f"{path}: {key}.{required} is missing; set it to a folder relative to {path.name}")

    folders = {}
    for role in ROLES:
        if role in table:
            folders[role] = (base / _string(table[role], f"{key}.{role}", path)).resolve()

    groups = {}
    for group_key in ("groups", "holdout_groups"):
        if group_key in table:
            value = _string(table[group_key], f"{key}.{group_key}", path)
            groups[group_key] = value if value == "folder" else (base / value).resolve()

    expected = table.get("expected_counts", {})
    if not isinstance(expected, dict):
        raise ConfigError(f"{path}: {key}.expected_counts must be a table like {{ real = 700 }}; got {expected!r}")
    for role, count in expected.items():
        if role not in ROLES:
            raise ConfigError(f"{path}: {key}.expected_counts.{role} is not a role; valid roles: {', '.join(ROLES)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(f"{path}: {key}.expected_counts.{role} must be a positive integer; got {count!r}")

    return DatasetConfig(
        name=name,
        real=folders["real"],
        generated=folders["generated"],
        holdout=folders.get("holdout"),
        pattern=_string(table.get("pattern", DEFAULT_PATTERN), f"{key}.pattern", path),
        groups=groups.get("groups"),
        holdout_groups=groups.get("holdout_groups"),
        expected_counts=dict(expected),
        description=_string(table.get("description", ""), f"{key}.description", path),
    )


def _encoder_table(name, table, path):
    key = f"encoders.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {key} must be a table; got {table!r}")
    _reject_unknown(table, _ENCODER_KEYS, f"{key}.", path)
    if name in FEATURE_SETS:
        raise ConfigError(f"{path}: {key} must not reuse the name of a feature set ({', '.join(FEATURE_SETS)})")

    params = {}
    if name not in ENCODER_NAMES and "kind" not in table:
        raise ConfigError(
            f"{path}: {key} is not a built-in encoder{_suggest(name, ENCODER_NAMES)}; a new encoder needs "
            f"kind = one of {', '.join(ENCODER_KINDS)} (and model = \"...\" for open_clip)"
        )
    if "kind" in table:
        kind = table["kind"]
        if kind not in ENCODER_KINDS:
            raise ConfigError(f"{path}: {key}.kind must be one of {', '.join(ENCODER_KINDS)}; got {kind!r}")
        params["kind"] = kind
    if "model" in table:
        params["model"] = _string(table["model"], f"{key}.model", path)
    if "weights" in table:
        params["weights"] = (path.parent / _string(table["weights"], f"{key}.weights", path)).resolve()
    for count_key in ("batch_size", "threads"):
        if count_key in table:
            params[count_key] = table[count_key]

    # The encoder package owns the rules of each kind's parameters. Checking them here, without
    # building the model, stops a bad table before any test runs.
    try:
        check_encoder_params(name, params)
    except ValueError as error:
        raise ConfigError(f"{path}: invalid [{key}] table: {error}") from None
    return params


def _report_table(table, encoder_names, path):
    _reject_unknown(table, _REPORT_KEYS, "report.", path)
    report = {**DEFAULT_REPORT, **table}
    if not isinstance(report["manifold"], bool):
        raise ConfigError(f"{path}: report.manifold must be true or false; got {report['manifold']!r}")
    valid = (*FEATURE_SETS, *encoder_names)
    if report["manifold_features"] not in valid:
        raise ConfigError(
            f"{path}: report.manifold_features must be one of {', '.join(valid)}; got {report['manifold_features']!r}"
        )
    return report


def _check_table(check, table, key, path, *, require_bound, encoders=ENCODER_NAMES):
    if check not in CHECK_SPECS:
        raise ConfigError(
            f"{path}: unknown check {key!r}{_suggest(check, CHECK_SPECS)}; valid checks: {', '.join(sorted(CHECK_SPECS))}"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {key} must be a table; got {table!r}")
    spec = CHECK_SPECS[check]

    bound_keys = {f"{kind}_{statistic}" for statistic in spec.statistics for kind in ("max", "min")}
    for name, value in table.items():
        if name in bound_keys:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(
                    f"{path}: {key}.{name} must be a finite number; got {value!r} ({type(value).__name__})"
                )
        elif name not in _CHECK_KEYS:
            valid = sorted(_CHECK_KEYS | bound_keys)
            raise ConfigError(
                f"{path}: unknown key {key}.{name}{_suggest(name, valid)}; valid keys: {', '.join(valid)}"
            )

    if "severity" in table and table["severity"] not in SEVERITIES:
        raise ConfigError(f"{path}: {key}.severity must be one of {', '.join(SEVERITIES)}; got {table['severity']!r}")
    if require_bound and "severity" not in table:
        raise ConfigError(f"{path}: {key}.severity is missing; set it to one of {', '.join(SEVERITIES)}")
    if require_bound and not any(name in bound_keys for name in table):
        raise ConfigError(
            f"{path}: {key} must set at least one bound; valid bounds: {', '.join(sorted(bound_keys))}"
        )
    tolerance = table.get("baseline_tolerance", 0.0)
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance < 0:
        raise ConfigError(f"{path}: {key}.baseline_tolerance must be a number >= 0; got {tolerance!r}")
    for text_key in ("source", "rationale"):
        if text_key in table:
            _string(table[text_key], f"{key}.{text_key}", path)

    valid_features = (*FEATURE_SETS, *encoders) if spec.takes_embeddings else FEATURE_SETS
    if "features" in table:
        features = table["features"]
        if not spec.takes_features:
            raise ConfigError(f"{path}: {key}.features is not valid: {check} takes no feature set")
        if not isinstance(features, list) or not features or any(f not in valid_features for f in features):
            no_encoders = "" if spec.takes_embeddings else f" ({check} takes no encoders)"
            raise ConfigError(
                f"{path}: {key}.features must be a non-empty list of {', '.join(valid_features)}{no_encoders}; "
                f"got {features!r}"
            )
        repeated = sorted({name for name in features if features.count(name) > 1})
        if repeated:
            raise ConfigError(f"{path}: {key}.features must name each feature set once; got {', '.join(repeated)} twice")
    if "encoder" in table:
        if not spec.takes_embeddings:
            embedding_checks = sorted(name for name, other in CHECK_SPECS.items() if other.takes_embeddings)
            raise ConfigError(
                f"{path}: {key}.encoder is not valid: {check} does not take embeddings; checks that do: "
                f"{', '.join(embedding_checks)}"
            )
        if table["encoder"] not in encoders:
            raise ConfigError(
                f"{path}: {key}.encoder must be one of {', '.join(encoders)} or a name defined in an "
                f"[encoders.<name>] table; got {table['encoder']!r}"
            )

    params = table.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: {key}.params must be a table; got {params!r}")
    _check_params(spec, params, f"{key}.params", path)
    return table


def _check_params(spec, params, key, path):
    signature = inspect.signature(spec.compute)
    configurable = {
        name: parameter
        for name, parameter in signature.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in CONTEXT_ARGUMENTS
    }
    for name, value in params.items():
        if name not in configurable:
            raise ConfigError(
                f"{path}: unknown parameter {key}.{name}{_suggest(name, configurable)}; "
                f"valid parameters: {', '.join(sorted(configurable)) or '(none)'}"
            )
        default = configurable[name].default
        if not _same_kind(value, default):
            raise ConfigError(
                f"{path}: {key}.{name} must be of type {type(default).__name__} like the default {default!r}; "
                f"got {value!r} ({type(value).__name__})"
            )


def _same_kind(value, default):
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, tuple):
        return isinstance(value, list)
    return isinstance(value, type(default))


def _threshold_spec(check, table):
    bounds = []
    for name, value in table.items():
        kind, _, statistic = name.partition("_")
        if kind in ("max", "min") and statistic in CHECK_SPECS[check].statistics:
            bounds.append(Bound(statistic=statistic, kind=kind, limit=float(value)))
    return ThresholdSpec(
        check=check,
        severity=table.get("severity", "fail"),
        bounds=tuple(sorted(bounds, key=lambda bound: bound.key)),
        source=table.get("source", ""),
        rationale=table.get("rationale", ""),
        params=tuple(sorted(table.get("params", {}).items())),
        baseline_tolerance=float(table.get("baseline_tolerance", 0.0)),
    )


def _table(document, name, prefix, path):
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {prefix}{name} must be a table; got {value!r}")
    return value


def _reject_unknown(table, valid, prefix, path):
    for name in table:
        if name not in valid:
            raise ConfigError(
                f"{path}: unknown key {prefix}{name}{_suggest(name, valid)}; valid keys: {', '.join(sorted(valid))}"
            )


def _string(value, key, path):
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string; got {value!r} ({type(value).__name__})")
    return value


def _image_size(value, path):
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 32 for v in value)
    ):
        raise ConfigError(f"{path}: audit.image_size must be [height, width] with integers >= 32; got {value!r}")
    return (value[0], value[1])


def _suggest(name, valid):
    matches = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
