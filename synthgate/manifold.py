"""The manifold view: a two-dimensional UMAP embedding of real and generated feature rows.

The view is for reading, not for gating: it shows whether the generated images occupy the same
regions as the real ones, lie beside them, or sit on a few islands (mode collapse). The report
draws it once per audit run and puts the separability AUC on the same features in its caption.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .checks._validation import validate_features, validate_int, validate_number, validate_same_features, validate_seed
from .errors import DegenerateInputError, EncoderUnavailableError

__all__ = ["ManifoldView", "compute_manifold", "UMAP_MISSING"]

logger = logging.getLogger(__name__)

UMAP_MISSING = "the manifold view needs umap-learn: pip install umap-learn"

# UMAP's neighbour graph needs more points than neighbours in each set.
_MIN_PER_SET = 10


@dataclass(frozen=True)
class ManifoldView:
    """Two-dimensional coordinates of a subsample of real and generated feature rows.

    Attributes
    ----------
    coordinates : ndarray of shape (n_real_shown + n_generated_shown, 2)
        UMAP coordinates, real rows first.
    real_rows, generated_rows : ndarray of int
        Which rows of the inputs are shown, in the order of ``coordinates``.
    params : mapping
        The effective UMAP parameters, seed and subsample sizes.
    """

    coordinates: np.ndarray
    real_rows: np.ndarray
    generated_rows: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def n_real(self) -> int:
        return len(self.real_rows)

    @property
    def n_generated(self) -> int:
        return len(self.generated_rows)


def compute_manifold(
    real,
    generated,
    *,
    n_neighbors=15,
    min_dist=0.1,
    metric="cosine",
    max_points=4000,
    seed=0,
) -> ManifoldView:
    """Embed real and generated feature rows together in two dimensions with UMAP.

    Both sets are embedded in one fit, so distances between the two colours on the plot mean
    the same as distances within one. When the sets hold more than ``max_points`` rows
    together, a seeded subsample keeps every real row if it can (at most half of
    ``max_points``) and fills the rest with generated rows.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features)
        Feature or embedding rows of the real images.
    generated : ndarray of shape (n_generated, n_features)
        Rows of the generated images, same features.
    n_neighbors : int, default=15
        UMAP's neighbourhood size (McInnes et al. 2018): small values keep local structure
        such as near-duplicate islands, large ones the global layout.
    min_dist : float, default=0.1
        UMAP's minimum distance between embedded points, in [0, 1).
    metric : str, default="cosine"
        Distance between rows; cosine suits L2-normalised embeddings and the centred
        ``pixels`` features.
    max_points : int, default=4000
        Most rows embedded. UMAP's run time grows about linearly: 4000 rows took about 10 s
        on 2 cores after the first call, which compiles UMAP's code (about 30 s).
    seed : int, default=0
        ``random_state`` of UMAP and of the subsample; with a seed UMAP runs in one thread
        and gives the same coordinates on every run.

    Returns
    -------
    ManifoldView

    Raises
    ------
    EncoderUnavailableError
        If umap-learn is not installed.
    DegenerateInputError
        If either set has fewer than 10 rows.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    n_neighbors = validate_int(n_neighbors, "n_neighbors", minimum=2)
    min_dist = validate_number(min_dist, "min_dist", low=0.0, high=1.0, low_inclusive=True)
    max_points = validate_int(max_points, "max_points", minimum=2 * _MIN_PER_SET)
    seed = validate_seed(seed)
    for rows, name in ((real, "real"), (generated, "generated")):
        if len(rows) < _MIN_PER_SET:
            raise DegenerateInputError(
                f"the manifold view needs at least {_MIN_PER_SET} {name} images; got {len(rows)}"
            )
    if importlib.util.find_spec("umap") is None:
        raise EncoderUnavailableError(UMAP_MISSING)

    rng = np.random.default_rng(seed)
    n_real_shown = min(len(real), max_points // 2)
    n_generated_shown = min(len(generated), max_points - n_real_shown)
    real_rows = np.sort(rng.choice(len(real), n_real_shown, replace=False))
    generated_rows = np.sort(rng.choice(len(generated), n_generated_shown, replace=False))
    rows = np.concatenate([real[real_rows], generated[generated_rows]]).astype(np.float32)

    import umap

    n_neighbors = min(n_neighbors, len(rows) - 1)
    logger.info("UMAP of %d real and %d generated rows (the first call in a process compiles)", n_real_shown, n_generated_shown)
    reducer = umap.UMAP(
        n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, random_state=seed, n_components=2, n_jobs=1
    )
    with warnings.catch_warnings():
        # A seeded UMAP runs in one thread and warns about it. The seed makes the view repeatable.
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        coordinates = reducer.fit_transform(rows)
    if not np.all(np.isfinite(coordinates)):
        raise DegenerateInputError("UMAP returned coordinates that are not finite; the rows may be constant")

    params = {
        "n_neighbors": n_neighbors, "min_dist": min_dist, "metric": metric, "max_points": max_points, "seed": seed,
        "umap_version": umap.__version__ if hasattr(umap, "__version__") else "unknown",
    }
    return ManifoldView(
        coordinates=np.asarray(coordinates, dtype=np.float64),
        real_rows=real_rows,
        generated_rows=generated_rows,
        params=params,
    )
