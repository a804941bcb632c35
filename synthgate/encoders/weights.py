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
import pickle
from pathlib import Path
from typing import Sequence

from ..errors import WeightsNotFoundError

__all__ = [
    "file_sha256",
    "torch_hub_checkpoints_dir",
    "hf_hub_cache_dir",
    "find_in_hf_cache",
    "load_torch_state_dict",
    "set_offline_environment",
    "weights_not_found",
]

logger = logging.getLogger(__name__)

_HASH_CHUNK_BYTES = 1 << 20

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


def load_torch_state_dict(path: Path) -> dict:
    """Read a PyTorch state dict with ``weights_only=True``, so the file cannot run code.

    A file in torch's zip format is memory-mapped rather than read into memory. A checkpoint
    that wraps the weights in a ``state_dict`` entry is unwrapped.

    Raises
    ------
    ValueError
        If the file is not a readable PyTorch checkpoint holding a dict of tensors.
    """
    import torch

    try:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            # Only torch's zip format can be memory-mapped, so older files are read whole.
            if "mmap" not in str(error):
                raise
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as error:
        raise ValueError(f"weights file {path} is not a readable PyTorch checkpoint: {error}") from error

    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(f"weights file {path} must hold a non-empty state dict; got {type(loaded).__name__}")
    return loaded


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
