"""Argument validators shared by the checks.

Every message follows one template, ``<param> must be <constraint>; got <value>``, so that a
user sees the parameter, the rule and the offending value. Bad arguments raise ``ValueError``.
Input that is well-formed but admits no statistic (too few images or patients) raises
:class:`~synthgate.errors.DegenerateInputError`.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import DegenerateInputError

__all__ = [
    "validate_features",
    "validate_same_features",
    "require_min_images",
    "validate_groups",
    "require_min_groups",
    "validate_seed",
    "validate_int",
    "validate_number",
    "validate_choice",
    "validate_feature_names",
    "validate_hashes",
]


def validate_features(array, name: str) -> np.ndarray:
    """Check a feature matrix of shape (n_images, n_features) and return it as a float array.

    float32 and float64 arrays are returned without a copy. Any other real numeric dtype is
    converted to float64. Rows must be finite.
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_images, n_features); "
            f"got ndim={array.ndim} (shape={array.shape})"
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must have a real numeric dtype; got dtype={array.dtype}")
    if array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature column; got shape={array.shape}")

    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)

    finite_rows = np.isfinite(array).all(axis=1)
    if not finite_rows.all():
        bad = np.flatnonzero(~finite_rows)
        raise ValueError(
            f"{name} must contain only finite values; got NaN or inf in {bad.size} rows "
            f"(first: row {bad[0]})"
        )
    return array


def validate_same_features(real: np.ndarray, generated: np.ndarray) -> None:
    """Check that both feature matrices have the same number of columns."""
    if real.shape[1] != generated.shape[1]:
        raise ValueError(
            f"generated must have as many features as real ({real.shape[1]}); "
            f"got {generated.shape[1]} (shape={generated.shape})"
        )


def require_min_images(n_images: int, minimum: int, name: str, reason: str = "") -> None:
    """Raise DegenerateInputError when a set has fewer than ``minimum`` images."""
    if n_images < minimum:
        detail = f" ({reason})" if reason else ""
        noun = "image" if minimum == 1 else "images"
        raise DegenerateInputError(f"{name} must contain at least {minimum} {noun}{detail}; got {n_images}")


def validate_groups(groups, n_images: int, name: str = "real_groups") -> np.ndarray | None:
    """Check one patient id per image and return integer codes 0..n_patients-1 (or None).

    Ids may be strings or integers but not a mix of both, and none may be missing.
    """
    if groups is None:
        return None
    if isinstance(groups, (str, bytes)):
        raise ValueError(
            f"{name} must be a sequence with one patient id per image; got a single string {groups!r}"
        )

    ids = np.asarray(groups)
    if ids.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D sequence with one patient id per image; got shape={ids.shape}"
        )
    if ids.shape[0] != n_images:
        raise ValueError(
            f"{name} must have one patient id per real image ({n_images}); got {ids.shape[0]}"
        )
    if ids.dtype.kind == "f" and np.isnan(ids).any():
        raise ValueError(f"{name} must not contain missing ids; got NaN")
    if ids.dtype.kind == "O" and any(item is None for item in ids):
        raise ValueError(f"{name} must not contain missing ids; got None")

    try:
        _, codes = np.unique(ids, return_inverse=True)
    except TypeError as error:
        raise ValueError(
            f"{name} must contain ids of one comparable type (all str or all int); got {error}"
        ) from None
    return codes.reshape(-1).astype(np.intp)


def require_min_groups(codes: np.ndarray, minimum: int, name: str, reason: str) -> None:
    """Raise DegenerateInputError when fewer than ``minimum`` distinct patients are present."""
    n_groups = np.unique(codes).size
    if n_groups < minimum:
        raise DegenerateInputError(
            f"{name} must contain at least {minimum} distinct patients ({reason}); got {n_groups}"
        )


def validate_seed(seed) -> int:
    """Check a seed for ``numpy.random.default_rng``: a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def validate_int(value, name: str, *, minimum: int, constraint: str | None = None) -> int:
    """Check an integer option that must be at least ``minimum``.

    ``constraint`` replaces the default wording ``an integer >= minimum`` when the minimum
    derives from another option (for example ``an integer >= 2 * n_splits (10)``).
    """
    rule = constraint or f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be {rule}; got {value!r}")
    return int(value)


def validate_number(
    value,
    name: str,
    *,
    low: float,
    high: float,
    low_inclusive: bool = False,
    high_inclusive: bool = False,
) -> float:
    """Check a real number inside an interval, for example a probability in (0, 1)."""
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    rule = f"a number in {left}{low:g}, {high:g}{right}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be {rule}; got {value!r}")

    above_low = value >= low if low_inclusive else value > low
    below_high = value <= high if high_inclusive else value < high
    if not (above_low and below_high):
        raise ValueError(f"{name} must be {rule}; got {value!r}")
    return float(value)


def validate_choice(value, name: str, options: Sequence[str]) -> str:
    """Check that ``value`` is one of ``options`` and list them in the message if not."""
    if value not in options:
        valid = ", ".join(repr(option) for option in options)
        raise ValueError(f"{name} must be one of {valid}; got {value!r}")
    return value


def validate_feature_names(feature_names, n_features: int) -> tuple[str, ...]:
    """Check one unique, non-empty string name per feature column."""
    names = _as_list(feature_names, f"feature_names must be a sequence of {n_features} strings")
    if len(names) != n_features:
        raise ValueError(f"feature_names must have one name per feature ({n_features}); got {len(names)}")

    invalid = [name for name in names if not isinstance(name, str) or not name]
    if invalid:
        raise ValueError(f"feature_names must be non-empty strings; got {invalid[0]!r}")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"feature_names must be unique; got duplicates {duplicates}")
    return tuple(names)


def _as_list(values, rule: str) -> list:
    """Return a list of the items of a sequence or 1-D array; ``rule`` starts the error message."""
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ValueError(f"{rule}; got {type(values).__name__} {values!r:.60}")
    return list(values)


def validate_hashes(hashes, n_images: int, name: str) -> list:
    """Check one content hash (str or bytes) per image."""
    values = _as_list(hashes, f"{name} must be a sequence with one hash per image")
    if len(values) != n_images:
        raise ValueError(f"{name} must have one hash per image ({n_images}); got {len(values)}")

    invalid = [value for value in values if not isinstance(value, (str, bytes))]
    if invalid:
        raise ValueError(f"{name} must contain str or bytes hashes; got {invalid[0]!r}")
    return values
