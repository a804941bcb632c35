"""Feature extractors and the cached feature computation.

An extractor turns a stack of slices into one feature row per slice. Every extractor follows
:class:`FeatureExtractor`; :func:`get_extractor` builds one by its registry name, and
:func:`compute_features` runs it over an :class:`~synthgate.dataset.ImageSet`, reusing cached
rows.

Registered extractors (columns and dtype with default parameters):

* ``pixels``: body-masked 64x64 block means, centred and L2-normalised; 4096 float32 columns.
* ``texture``: first-order, GLCM and LBP statistics inside the body; 93 float64 columns.
* ``spectrum``: azimuthally averaged log10 power spectrum of the whole slice; 180 float64 columns.
* ``curvelet``: log energy and Hoyer sparsity of 3 x 12 curvelet bands of the body; 72 float64
  columns.
* ``properties``: mean intensity, body and lung fractions, Laplacian variance and entropy; 5
  float64 columns.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from .body_mask import BODY_MASK_VERSION, body_mask, body_masks
from .curvelet import CurveletExtractor
from .extract import compute_features
from .intensity import IntensityExtractor
from .pixels import PixelExtractor
from .properties import PropertiesExtractor
from .spectrum import SpectrumExtractor
from .texture import TextureExtractor

__all__ = [
    "FeatureExtractor",
    "PixelExtractor",
    "TextureExtractor",
    "IntensityExtractor",
    "SpectrumExtractor",
    "CurveletExtractor",
    "PropertiesExtractor",
    "EXTRACTORS",
    "EXTRACTOR_NAMES",
    "get_extractor",
    "compute_features",
    "body_mask",
    "body_masks",
    "BODY_MASK_VERSION",
]


@runtime_checkable
class FeatureExtractor(Protocol):
    """The interface that :func:`compute_features` and the checks expect of an extractor.

    Attributes
    ----------
    name : str
        Registry name, also the first part of the cache namespace.
    version : int
        Bumped whenever the output for the same input and params changes, so that stale cached
        rows are not reused.
    params : mapping
        Every effective parameter that changes the output, JSON-serialisable.
    feature_names : tuple of str
        One readable, stable name per output column.
    """

    name: str
    version: int
    params: Mapping[str, Any]
    feature_names: tuple[str, ...]

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Map ``images`` of shape (n, H, W), uint8, to features of shape (n, len(feature_names))."""
        ...


EXTRACTORS = {
    PixelExtractor.name: PixelExtractor,
    TextureExtractor.name: TextureExtractor,
    IntensityExtractor.name: IntensityExtractor,
    SpectrumExtractor.name: SpectrumExtractor,
    CurveletExtractor.name: CurveletExtractor,
    PropertiesExtractor.name: PropertiesExtractor,
}
EXTRACTOR_NAMES = tuple(EXTRACTORS)


def get_extractor(name: str, **params) -> FeatureExtractor:
    """Build the extractor registered as ``name`` with the given keyword parameters.

    Parameters
    ----------
    name : str
        One of :data:`EXTRACTOR_NAMES`.
    **params
        Keyword parameters of that extractor's class (for example ``size=32`` for ``pixels``);
        parameters left out take the class defaults.

    Raises
    ------
    ValueError
        If ``name`` is not registered or a parameter is not one of the extractor's (both
        messages list the valid choices), or a parameter value is invalid.
    """
    if name not in EXTRACTORS:
        raise ValueError(f"extractor must be one of {list(EXTRACTOR_NAMES)}; got {name!r}")
    cls = EXTRACTORS[name]

    valid = [parameter for parameter in inspect.signature(cls).parameters]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"parameters of extractor {name!r} must be among {valid}; got unknown {unknown}")
    return cls(**params)
