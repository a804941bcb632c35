"""Find, hash and read encoder weights on the local disk; nothing here downloads.

An encoder first uses the ``weights`` parameter (``weights = "..."`` in the
``[encoders.<name>]`` table of thresholds.toml). Without it, the encoder looks in the cache of
the library that the weights belong to: torch hub's ``checkpoints`` folder, the Hugging Face hub
cache, or the file shipped in a pip package. The SHA-256 of the weights file is part of every encoder's ``params``, so a
changed file gets a new cache namespace.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import EncoderLoadError, WeightsNotFoundError

__all__ = [
    "file_sha256",
    "torch_hub_checkpoints_dir",
    "hf_hub_cache_dir",
    "find_in_hf_cache",
    "load_torch_state_dict",
    "load_safetensors",
    "safetensors_shapes",
    "tensor_shapes",
    "check_state_dict",
    "set_offline_environment",
    "weights_not_found",
]

logger = logging.getLogger(__name__)

_HASH_CHUNK_BYTES = 1 << 20

# The first bytes of a zip archive: torch.save has written this format since torch 1.6, and
# only this format can be memory-mapped by torch.load.
_ZIP_MAGIC = b"PK\x03\x04"

# SHA-256 digests by (resolved path, size, modification time in ns): a 340 MB file takes about
# 0.3 s to hash, and an audit builds each encoder once per process but a test may build many.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file's bytes, remembered while the file is unchanged."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(resolved, "rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def torch_hub_checkpoints_dir() -> Path:
    """Return torch hub's ``checkpoints`` folder, where torchvision keeps downloaded weights.

    It is ``torch.hub.get_dir() / "checkpoints"``: ``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``, read when called.
    """
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache_dir() -> Path:
    """Return the Hugging Face hub cache folder, resolved from the environment when called.

    The order is huggingface_hub's: ``$HF_HUB_CACHE``, ``$HUGGINGFACE_HUB_CACHE``,
    ``$HF_HOME/hub``, ``$XDG_CACHE_HOME/huggingface/hub``, ``~/.cache/huggingface/hub``.
    huggingface_hub reads these once when it is imported, so a variable set later (a test's
    temporary cache) would be missed without this function.
    """
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.path.expandvars(os.environ[variable])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache_home) / "huggingface" / "hub"


def set_offline_environment() -> None:
    """Set ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` unless the user has set them.

    Call it before importing huggingface_hub or open_clip, which read the variables at import,
    so that no code path waits on the network.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def find_in_hf_cache(repo_id: str, filenames: Sequence[str]) -> Path | None:
    """Return the first of ``filenames`` cached for the ``main`` revision of a hub model, or None.

    Uses ``huggingface_hub.try_to_load_from_cache``, which only reads the cache folder.
    """
    set_offline_environment()
    from huggingface_hub import try_to_load_from_cache

    cache_dir = hf_hub_cache_dir()
    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache_dir))
        if isinstance(found, str):
            return Path(found)
    return None


def load_torch_state_dict(path: Path, *, remedy: str) -> dict:
    """Read a state dict saved with ``torch.save``, with ``weights_only=True`` so the file cannot run code.

    A file in torch's zip format is memory-mapped rather than read into memory. A checkpoint
    that wraps the weights in a ``state_dict`` entry is unwrapped.

    Parameters
    ----------
    path : Path
        The weights file.
    remedy : str
        What the user should do, appended to the error message.

    Raises
    ------
    EncoderLoadError
        If the file cannot be opened, ``torch.load`` fails on it for any reason, or it does not
        contain a non-empty dict.
    """
    import torch

    try:
        with open(path, "rb") as handle:
            memory_map = handle.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    except OSError as error:
        raise EncoderLoadError(f"weights file {path} could not be read: {error.strerror or error}; {remedy}") from None

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=memory_map)
    except Exception:
        # Neither torch's message nor its exception is passed on: for a file that is not a
        # checkpoint, torch 2.6 and later recommend retrying with weights_only=False, which
        # would let the file run arbitrary code.
        raise EncoderLoadError(f"weights file {path} is not a readable PyTorch checkpoint; {remedy}") from None

    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise EncoderLoadError(f"weights file {path} contains a {type(loaded).__name__}, not a state dict; {remedy}")
    if not loaded:
        raise EncoderLoadError(f"weights file {path} contains an empty state dict; {remedy}")
    return loaded


def load_safetensors(path: Path, *, remedy: str) -> dict:
    """Read every tensor of a ``.safetensors`` file onto the CPU.

    Raises
    ------
    EncoderLoadError
        If the safetensors package fails on the file for any reason.
    """
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception:
        raise EncoderLoadError(f"weights file {path} is not a readable safetensors file; {remedy}") from None


def safetensors_shapes(path: Path, *, remedy: str) -> dict[str, tuple[int, ...]]:
    """Return the shape of each tensor in a ``.safetensors`` file, read from its header only.

    Raises
    ------
    EncoderLoadError
        If the safetensors package fails on the file for any reason.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception:
        raise EncoderLoadError(f"weights file {path} is not a readable safetensors file; {remedy}") from None


def tensor_shapes(state: Mapping[Any, Any]) -> dict[Any, Any]:
    """Return the shape (a tuple) of each tensor in a state dict, or the type name of a value that is no tensor."""
    import torch

    return {
        key: tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        for key, value in state.items()
    }


def check_state_dict(
    path: Path, shapes: Mapping[Any, Any], expected: Mapping[str, tuple[int, ...]], *, architecture: str, remedy: str
) -> None:
    """Raise unless a file's state dict has exactly the keys and tensor shapes of a model.

    ``torch.nn.Module.load_state_dict`` would list every missing and unexpected key, hundreds
    for the wrong architecture; this message gives the counts and the first of each.

    Parameters
    ----------
    path : Path
        The weights file, for the message.
    shapes : mapping
        The file's keys, each with a shape tuple or the type name of a value that is no tensor
        (:func:`tensor_shapes`).
    expected : mapping
        The model's keys and shapes, in the model's order.
    architecture : str
        The model in words, for example ``"EfficientNet-Lite0"``.
    remedy : str
        What the user should do, appended to the message.

    Raises
    ------
    EncoderLoadError
        If a key of the model other than a batch norm's ``num_batches_tracked`` is missing from
        the file, the file has a key the model lacks, or a value is not a tensor of the model's
        shape.
    """
    absent = [key for key in expected if key not in shapes]
    # Files from older torch versions lack num_batches_tracked, and torch's batch norm sets a
    # missing one to 0 when the state dict has no version metadata, so only other keys must be there.
    missing = [key for key in absent if not key.endswith(".num_batches_tracked")]
    unexpected = [key for key in shapes if key not in expected]
    if missing or unexpected:
        found = f"{len(expected) - len(absent)} of {len(expected)} expected keys found"
        if missing:
            found += f" (first missing key: {missing[0]})"
        if unexpected:
            noun = "key" if len(unexpected) == 1 else "keys"
            found += f" and {len(unexpected)} unexpected {noun} (first unexpected key: {unexpected[0]})"
        raise EncoderLoadError(f"weights file {path} does not match {architecture}: {found}; {remedy}")

    different = [key for key in expected if key in shapes and shapes[key] != tuple(expected[key])]
    if different:
        key = different[0]
        model_shape = _format_shape(expected[key])
        if isinstance(shapes[key], str):
            detail = f"{key} is of type {shapes[key]} in the file, not a tensor of shape {model_shape}"
        else:
            detail = f"{key} has shape {_format_shape(shapes[key])} in the file but {model_shape} in the model"
        raise EncoderLoadError(
            f"weights file {path} does not match {architecture}: {len(different)} of {len(expected)} entries "
            f"have another shape (first: {detail}); {remedy}"
        )


def _format_shape(shape) -> str:
    return f"[{', '.join(str(size) for size in shape)}]"


def weights_not_found(encoder: str, searched: Sequence[str], *, expected: str, cache_hint: str) -> WeightsNotFoundError:
    """Build the error for weights found in none of the places searched.

    Parameters
    ----------
    encoder : str
        The encoder's name, also the ``[encoders.<name>]`` table of thresholds.toml.
    searched : sequence of str
        Every place looked at, each with what was expected there.
    expected : str
        What the weights are, in words (for example a file name and its source).
    cache_hint : str
        The sentence saying where in a library cache the weights may be put instead.
    """
    places = "; ".join(searched)
    message = (
        f"weights of encoder {encoder!r} not found; looked in: {places}. "
        f"Set weights = \"/path/to/weights\" in the [encoders.{encoder}] table of thresholds.toml "
        f"(or pass weights= to get_encoder) to {expected}, or {cache_hint}. "
        "synthgate never downloads weights."
    )
    return WeightsNotFoundError(message, searched)
