"""On-disk store of computed arrays and JSON records, keyed by (namespace, key).

The layout is ``root/<namespace>/<key[:2]>/<key>.npy`` (or ``.json``). A namespace names one
extractor, its version and its parameters (see :func:`cache_namespace`), and a key is usually the
SHA-256 of an image file, so an entry is invalidated exactly when its file or its extractor
changes. Every write goes to a temporary file in the target folder and is moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows, so a reader or a second writer never sees
a partly written entry. An entry that cannot be read is a cache miss: it is logged and the next
save overwrites it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["FeatureCache", "cache_namespace", "default_cache_dir"]

logger = logging.getLogger(__name__)

_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")

# Long enough for a SHA-256 hex digest plus a prefix, and well inside the 255-byte file-name limit
# of common file systems once the suffix is added.
_MAX_NAME_LENGTH = 200

_TEMP_PREFIX = ".tmp-"


def default_cache_dir() -> Path:
    """Return the default cache folder (not created).

    The first that is set and non-empty wins: ``$SYNTHGATE_CACHE_DIR``, then
    ``$XDG_CACHE_HOME/synthgate``, then ``~/.cache/synthgate``.
    """
    explicit = os.environ.get("SYNTHGATE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()

    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "synthgate"

    return Path.home() / ".cache" / "synthgate"


def cache_namespace(name: str, version: int, params: Mapping[str, Any]) -> str:
    """Build a namespace that changes whenever the extractor version or a parameter changes.

    Parameters
    ----------
    name : str
        Extractor name, e.g. ``"pixels"``; characters ``[A-Za-z0-9._-]`` only.
    version : int
        Extractor version (>= 0). Bump it whenever the extractor's output changes for the same
        input and parameters.
    params : mapping
        Every parameter that changes the output. It is hashed as canonical JSON (sorted keys, no
        spaces, tuples written as lists), so values must be JSON-serialisable and finite.

    Returns
    -------
    str
        ``"<name>-v<version>-<first 12 hex digits of the SHA-256 of the canonical JSON>"``, e.g.
        ``"pixels-v1-3f2a9c0d1b7e"``.
    """
    _validate_name(name, "name")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"version must be an integer >= 0; got {version!r}")
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping; got {type(params).__name__}")

    try:
        canonical = json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"params must be JSON-serialisable with finite numbers; got {params!r} ({exc})") from exc

    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
    return f"{name}-v{version}-{digest}"


class FeatureCache:
    """Store of arrays (``.npy``) and JSON records under one root folder.

    Parameters
    ----------
    root : str, Path or None
        Cache folder, created on the first save. ``None`` disables caching: every load is a miss
        and every save does nothing.

    Notes
    -----
    Namespaces and keys may contain only ``[A-Za-z0-9._-]``, may not start with ``.`` and are at
    most 200 characters long, so no name can escape the root folder or collide with the
    temporary files of an unfinished write.
    """

    def __init__(self, root: str | os.PathLike | None):
        self._root = None if root is None else Path(root).expanduser()

    def __repr__(self) -> str:
        return f"FeatureCache({None if self._root is None else str(self._root)!r})"

    @property
    def root(self) -> Path | None:
        """The cache folder, or ``None`` when caching is disabled."""
        return self._root

    @property
    def enabled(self) -> bool:
        """Whether loads and saves touch the disk."""
        return self._root is not None

    def path_for(self, namespace: str, key: str, suffix: str = ".npy") -> Path:
        """Return the file of one entry (it may not exist).

        Raises
        ------
        ValueError
            If ``namespace`` or ``key`` contains a character outside ``[A-Za-z0-9._-]``, starts
            with ``.``, is empty or is longer than 200 characters, or if caching is disabled.
        """
        _validate_name(namespace, "namespace")
        _validate_name(key, "key")
        if self._root is None:
            raise ValueError("path_for needs a cache root; this FeatureCache was created with root=None")
        return self._root / namespace / key[:2] / f"{key}{suffix}"

    # Arrays.

    def load(self, namespace: str, key: str) -> np.ndarray | None:
        """Return the cached array, or ``None`` on a miss (absent, unreadable or corrupt entry)."""
        if self._root is None:
            _validate_name(namespace, "namespace")
            _validate_name(key, "key")
            return None
        return _read_entry(self.path_for(namespace, key, ".npy"), _read_npy)

    def save(self, namespace: str, key: str, array: np.ndarray) -> None:
        """Store ``array`` atomically, replacing any previous entry.

        Object arrays are rejected with ``ValueError`` because loading them would need pickle.
        """
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise ValueError(f"array must have a numeric dtype; got dtype {array.dtype}")
        if self._root is None:
            _validate_name(namespace, "namespace")
            _validate_name(key, "key")
            return
        _write_atomically(self.path_for(namespace, key, ".npy"), lambda handle: np.save(handle, array))

    def load_many(self, namespace: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Return ``{key: array}`` for the keys that are cached; missing keys are absent."""
        found = {}
        for key in keys:
            array = self.load(namespace, key)
            if array is not None:
                found[key] = array
        return found

    def save_many(self, namespace: str, mapping: Mapping[str, np.ndarray]) -> None:
        """Store every ``{key: array}`` pair of ``mapping``."""
        for key, array in mapping.items():
            self.save(namespace, key, array)

    # JSON records.

    def load_json(self, namespace: str, key: str) -> dict | None:
        """Return the cached JSON object, or ``None`` on a miss (absent, unreadable or corrupt)."""
        if self._root is None:
            _validate_name(namespace, "namespace")
            _validate_name(key, "key")
            return None
        return _read_entry(self.path_for(namespace, key, ".json"), _read_json)

    def save_json(self, namespace: str, key: str, obj: Mapping[str, Any]) -> None:
        """Store the JSON object ``obj`` atomically, replacing any previous entry."""
        if not isinstance(obj, Mapping):
            raise TypeError(f"obj must be a mapping (a JSON object); got {type(obj).__name__}")
        text = json.dumps(dict(obj), sort_keys=True)
        if self._root is None:
            _validate_name(namespace, "namespace")
            _validate_name(key, "key")
            return
        _write_atomically(self.path_for(namespace, key, ".json"), lambda handle: handle.write(text.encode("utf-8")))

    def load_json_many(self, namespace: str, keys: Iterable[str]) -> dict[str, dict]:
        """Return ``{key: object}`` for the keys that are cached; missing keys are absent."""
        found = {}
        for key in keys:
            obj = self.load_json(namespace, key)
            if obj is not None:
                found[key] = obj
        return found


def _validate_name(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string; got {type(value).__name__}")
    if (
        not _NAME_PATTERN.fullmatch(value)
        or value.startswith(".")
        or len(value) > _MAX_NAME_LENGTH
    ):
        raise ValueError(
            f"{what} must be 1-{_MAX_NAME_LENGTH} characters from [A-Za-z0-9._-] and must not start "
            f"with '.'; got {value!r}"
        )


def _read_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _read_json(path: Path) -> dict:
    with open(path, "rb") as handle:
        obj = json.loads(handle.read().decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, found {type(obj).__name__}")
    return obj


def _read_entry(path: Path, reader):
    try:
        return reader(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors, and np.load raises
        # ValueError or EOFError for a damaged header or a short file.
        logger.warning(
            "ignoring unreadable cache entry %s (%s: %s); it will be recomputed", path, type(exc).__name__, exc
        )
        return None


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX, suffix=path.suffix)
    try:
        # mkstemp creates the file readable by its owner only, but a cache may be shared.
        if hasattr(os, "fchmod"):
            os.fchmod(descriptor, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(temp_name, path)
    except BaseException:
        # Leave no temporary file behind, also on KeyboardInterrupt.
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
