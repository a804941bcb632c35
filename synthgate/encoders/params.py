"""Checks of single encoder parameter values, shared by get_encoder and the encoder classes.

This module imports neither numpy nor torch, so that a config file can be checked cheaply.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

from ..errors import EncoderLoadError

__all__ = ["validate_batch_size", "validate_threads", "validate_weights", "validate_model", "HF_HUB_PREFIX"]

HF_HUB_PREFIX = "hf-hub:"

# Model name schemes of open_clip that this package does not accept as model.
_OTHER_SCHEMES = ("local-dir:",)


def validate_batch_size(batch_size) -> int:
    """Return ``batch_size`` as an int after checking that it is a positive integer."""
    if not _is_positive_integer(batch_size):
        raise EncoderLoadError(f"batch_size must be a positive integer; got {batch_size!r}")
    return int(batch_size)


def validate_threads(threads) -> int | None:
    """Return ``threads`` as an int or None after checking that it is None or a positive integer."""
    if threads is None:
        return None
    if not _is_positive_integer(threads):
        raise EncoderLoadError(f"threads must be None or a positive integer; got {threads!r}")
    return int(threads)


def validate_weights(weights) -> Path | None:
    """Return ``weights`` as a Path or None after checking its type (not its existence)."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)) or not str(weights).strip():
        raise EncoderLoadError(f"weights must be None or a non-empty str or path of a file or folder; got {weights!r}")
    return Path(weights).expanduser()


def validate_model(model) -> str:
    """Return ``model`` after checking that it names an open_clip architecture or a hub model."""
    valid = "an open_clip architecture such as 'ViT-B-16' or a Hugging Face hub id 'hf-hub:org/name'"
    if not isinstance(model, str) or not model.strip():
        raise EncoderLoadError(f"model must be {valid}; got {model!r}")
    if model.startswith(HF_HUB_PREFIX):
        repo_id = model[len(HF_HUB_PREFIX):]
        if repo_id.count("/") != 1 or not all(part.strip() for part in repo_id.split("/")):
            raise EncoderLoadError(f"model must be {valid}; got {model!r}, whose hub id is not of the form org/name")
    for scheme in _OTHER_SCHEMES:
        if model.startswith(scheme):
            raise EncoderLoadError(
                f"model must be {valid}; got {model!r}. Pass a local model folder as weights instead"
            )
    return model


def _is_positive_integer(value) -> bool:
    # numbers.Integral includes numpy integers; bool is an int subclass but not a count.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
