"""The table of every check the audit can run, and what each needs as input."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = ["CheckSpec", "CHECK_SPECS", "CONTEXT_ARGUMENTS", "FEATURE_SETS", "CATEGORIES", "REQUIREMENTS"]

FEATURE_SETS = ("pixels", "texture", "spectrum", "curvelet", "properties")
CATEGORIES = ("integrity", "privacy", "fidelity", "diversity")

# Keyword arguments that the audit fills from the dataset itself; thresholds.toml may not set them.
CONTEXT_ARGUMENTS = frozenset(
    {"real_groups", "feature_names", "real_pixel_hashes", "generated_pixel_hashes", "expected", "manifest", "real_manifest"}
    # The holdout set's features and patient groups, and the decoded real and generated image sets.
    | {"holdout", "holdout_groups", "real_images", "generated_images"}
)

# Dataset inputs a check may require (CheckSpec.requires); without them the audit skips it.
REQUIREMENTS = ("holdout", "groups")


@dataclass(frozen=True)
class CheckSpec:
    """The audit's description of one check: its module, category and inputs.

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
    takes_images : bool
        True when ``compute_<name>`` takes the real and the generated ImageSet and decodes
        the images it needs itself (for statistics on pixels that no cached feature set
        holds). Such a check runs once per dataset, with neither a feature set nor a role.
    roles : tuple of str
        For a check on one ImageSet, the roles it applies to.
    requires : tuple of str
        Dataset inputs from REQUIREMENTS without which the check cannot run: ``"holdout"`` (real
        images not used for training) and ``"groups"`` (patient ids of the real images, given
        rather than inferred). The audit skips the check with a reason when one is missing.
    takes_embeddings : bool
        True when the check may run on an encoder (``encoder = "..."`` or an encoder name in
        ``features`` in its table) as well as on the built-in feature sets.
    follows_encoder_option : bool
        True when ``--encoder`` adds its encoder to the check: its bounds mean the same on any
        embedding. A check whose bounds were calibrated on one feature set takes an encoder
        only when its table names one.
    """

    name: str
    module: str
    category: str
    takes_features: bool
    roles: tuple[str, ...] = ("real", "generated", "holdout")
    takes_images: bool = False
    requires: tuple[str, ...] = ()
    takes_embeddings: bool = False
    follows_encoder_option: bool = False

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
        CheckSpec(
            "nearest_real_distance", "synthgate.checks.nearest_real_distance", "privacy", True, takes_embeddings=True
        ),
        CheckSpec(
            "separability_auc", "synthgate.checks.separability_auc", "fidelity", True, takes_embeddings=True,
            follows_encoder_option=True,
        ),
        CheckSpec("texture_gap", "synthgate.checks.texture_gap", "fidelity", True),
        CheckSpec(
            "duplicate_rate", "synthgate.checks.duplicate_rate", "diversity", True, takes_embeddings=True,
            follows_encoder_option=True,
        ),
        CheckSpec(
            "distribution_distance", "synthgate.checks.distribution_distance", "fidelity", True, takes_embeddings=True,
            follows_encoder_option=True,
        ),
        CheckSpec(
            "coverage", "synthgate.checks.coverage", "diversity", True, takes_embeddings=True,
            follows_encoder_option=True,
        ),
        CheckSpec("spectral_gap", "synthgate.checks.spectral_gap", "fidelity", True),
        CheckSpec("image_outliers", "synthgate.checks.image_outliers", "fidelity", True),
        CheckSpec(
            "structural_diversity", "synthgate.checks.structural_diversity", "diversity", takes_features=False,
            takes_images=True,
        ),
        CheckSpec("copy_detection", "synthgate.checks.copy_detection", "privacy", True),
        CheckSpec(
            "membership_inference", "synthgate.checks.membership_inference", "privacy", True, requires=("holdout",)
        ),
        CheckSpec("dcr_holdout", "synthgate.checks.dcr_holdout", "privacy", True, requires=("holdout",)),
        CheckSpec("data_copying", "synthgate.checks.data_copying", "privacy", True, requires=("holdout",)),
        CheckSpec("authenticity", "synthgate.checks.authenticity", "privacy", True, requires=("holdout",)),
        CheckSpec(
            "patient_exposure", "synthgate.checks.patient_exposure", "privacy", True, requires=("holdout", "groups")
        ),
    )
}
