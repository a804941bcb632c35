"""The table of every check the audit can run, and what each needs as input."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = ["CheckSpec", "CHECK_SPECS", "CONTEXT_ARGUMENTS", "FEATURE_SETS", "CATEGORIES"]

FEATURE_SETS = ("pixels", "texture")
CATEGORIES = ("integrity", "privacy", "fidelity", "diversity")

# Keyword arguments that the audit fills from the dataset itself; thresholds.toml may not set them.
CONTEXT_ARGUMENTS = frozenset(
    {"real_groups", "feature_names", "real_pixel_hashes", "generated_pixel_hashes", "expected", "manifest", "real_manifest"}
)


@dataclass(frozen=True)
class CheckSpec:
    """How the audit runs one check.

    Attributes
    ----------
    name : str
        The check's name, also its ``[checks.<name>]`` table.
    module : str
        The module that defines ``compute_<name>`` and ``STATISTICS``.
    category : str
        One of CATEGORIES; groups the scorecard.
    takes_features : bool
        True when ``compute_<name>`` takes feature matrices, False when it takes one ImageSet.
    roles : tuple of str
        For a check on one ImageSet, the roles it applies to.
    """

    name: str
    module: str
    category: str
    takes_features: bool
    roles: tuple[str, ...] = ("real", "generated", "holdout")

    def _module(self):
        return importlib.import_module(self.module)

    @property
    def compute(self) -> Callable:
        return getattr(self._module(), f"compute_{self.name}")

    @property
    def statistics(self) -> Mapping[str, str]:
        return self._module().STATISTICS

    @property
    def description(self) -> str:
        """The first line of the compute function's docstring."""
        doc = self.compute.__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


CHECK_SPECS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec("decodable", "synthgate.integrity.decodable", "integrity", takes_features=False),
        CheckSpec("image_size", "synthgate.integrity.image_size", "integrity", takes_features=False),
        CheckSpec("image_count", "synthgate.integrity.image_count", "integrity", takes_features=False),
        CheckSpec("png_mode", "synthgate.integrity.contract", "integrity", takes_features=False),
        CheckSpec("grey_palette", "synthgate.integrity.contract", "integrity", takes_features=False),
        CheckSpec("bit_depth", "synthgate.integrity.contract", "integrity", takes_features=False),
        CheckSpec("unique_hashes", "synthgate.integrity.contract", "integrity", takes_features=False),
        CheckSpec(
            "no_shared_hashes", "synthgate.integrity.contract", "integrity", takes_features=False,
            roles=("generated", "holdout"),
        ),
        CheckSpec(
            "intensity_range", "synthgate.integrity.contract", "integrity", takes_features=False,
            roles=("generated", "holdout"),
        ),
        CheckSpec("nearest_real_distance", "synthgate.checks.nearest_real_distance", "privacy", True),
        CheckSpec("separability_auc", "synthgate.checks.separability_auc", "fidelity", True),
        CheckSpec("texture_gap", "synthgate.checks.texture_gap", "fidelity", True),
        CheckSpec("duplicate_rate", "synthgate.checks.duplicate_rate", "diversity", True),
    )
}
