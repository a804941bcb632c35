"""One dataset role (real, generated, holdout): its files, content hashes, decode info and groups.

:func:`load_image_set` lists a folder, hashes every file and decodes it once to learn its
:class:`~synthgate.images.ImageInfo`. The decode info is cached by file hash, so a second run
on unchanged files decodes nothing. Pixels are not kept in memory: :meth:`ImageSet.images` and
:meth:`ImageSet.iter_batches` decode on demand.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import PIL
from tqdm import tqdm

from . import images
from .cache import FeatureCache, cache_namespace
from .errors import DatasetError, ImageDecodeError, SynthgateWarning
from .features.body_mask import BODY_THRESHOLD
from .images import DEFAULT_PATTERN, WORKING_SIZE, ImageInfo, validate_size

__all__ = ["LoadFailure", "ImageSet", "load_image_set", "DECODE_CACHE_VERSION"]

logger = logging.getLogger(__name__)

DECODE_CACHE_VERSION = 2
"""Version of the cached decode records; bump it whenever ``decode_image`` output changes."""

# Pillow's PNG decoder releases the GIL for part of its work. Loading 2000 256x256 palette PNGs
# without a cache took 2.7 s with 1 decoding thread and 1.6 s with 2 or 4 (2-core VM, Pillow 13.0,
# CPython 3.11). A 2-process pool measured between 1.4 and 3.7 s there, so threads are used.
_MAX_THREADS = 4

_MAX_LISTED = 5


@dataclass(frozen=True)
class LoadFailure:
    """A file that matched the pattern but is not used, and why (decode error or constant image)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """The loadable images of one dataset role, in a deterministic order.

    Attributes
    ----------
    role : str
        Dataset role, e.g. ``"real"``, ``"generated"``, ``"holdout"``.
    root : Path
        Dataset folder.
    paths : tuple of Path
        Loadable, non-constant images, sorted by POSIX path relative to ``root``.
    file_sha256 : tuple of str
        Hex SHA-256 of each file's bytes, aligned with ``paths``; the cache key of every feature.
    infos : tuple of ImageInfo
        Decode info, aligned with ``paths``.
    groups : tuple of str or None
        Group (patient id) of each image, aligned with ``paths``, or None.
    failures : tuple of LoadFailure
        Matching files that are excluded: undecodable files and constant images.
    size : (int, int)
        ``(height, width)`` that images are decoded to.
    """

    role: str
    root: Path
    paths: tuple[Path, ...]
    file_sha256: tuple[str, ...]
    infos: tuple[ImageInfo, ...]
    groups: tuple[str, ...] | None
    failures: tuple[LoadFailure, ...]
    size: tuple[int, int] = WORKING_SIZE

    def __post_init__(self):
        n = len(self.paths)
        lengths = {"file_sha256": len(self.file_sha256), "infos": len(self.infos)}
        if self.groups is not None:
            lengths["groups"] = len(self.groups)
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"{name} must have one entry per path ({n}); got {length}")

    def __len__(self) -> int:
        return len(self.paths)

    def relative_paths(self) -> tuple[str, ...]:
        """Return each path relative to ``root`` as a POSIX string, aligned with ``paths``."""
        return tuple(path.relative_to(self.root).as_posix() for path in self.paths)

    def images(self, indices: Sequence[int] | np.ndarray | None = None, *, threads: int | None = None) -> np.ndarray:
        """Decode images from disk.

        Parameters
        ----------
        indices : sequence of int or None, default=None
            Positions in ``paths`` (0 <= i < len(self)); None means all images. Mind the memory:
            every image takes ``size[0] * size[1]`` bytes, so prefer :meth:`iter_batches`.
        threads : int or None, default=None
            Decoding threads; None uses up to 4, capped by the CPU count.

        Returns
        -------
        ndarray of shape (len(indices), height, width), uint8
            Grey levels 0-255.

        Raises
        ------
        DatasetError
            If a file was changed or removed since the set was loaded.
        """
        if indices is None:
            positions = np.arange(len(self))
        else:
            positions = np.asarray(indices)
            if positions.size == 0:
                positions = positions.astype(np.intp)
            if positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer):
                raise ValueError(f"indices must be a 1-D sequence of integers; got {indices!r}")
            if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
                raise ValueError(
                    f"indices must lie in 0..{len(self) - 1}; got values {positions.min()}..{positions.max()}"
                )

        stack = np.empty((len(positions), *self.size), dtype=np.uint8)
        decoded = _map_in_threads(self._decode_at, [int(i) for i in positions], threads=threads)
        for row, array in enumerate(decoded):
            stack[row] = array
        return stack

    def iter_batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, images)`` for consecutive batches of at most ``batch_size`` images.

        ``indices`` is an int ndarray of shape (m,) and ``images`` a uint8 ndarray of shape
        (m, height, width), so at most one batch of pixels is in memory at a time.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        for start in range(0, len(self), batch_size):
            indices = np.arange(start, min(start + batch_size, len(self)))
            yield indices, self.images(indices)

    def _decode_at(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(
                f"{self.role} image {path} cannot be read any more ({exc}); load the image set again"
            ) from exc
        if hashlib.sha256(data).hexdigest() != self.file_sha256[index]:
            raise DatasetError(
                f"{self.role} image {path} changed after the image set was loaded; load the image set again"
            )
        array, _ = images.decode_image(path, size=self.size, data=data, warn=False)
        return array


def load_image_set(
    root: str | os.PathLike,
    *,
    role: str,
    pattern: str = DEFAULT_PATTERN,
    size: tuple[int, int] = WORKING_SIZE,
    groups: str | os.PathLike | None = None,
    cache: FeatureCache | None = None,
    threads: int | None = None,
) -> ImageSet:
    """List, hash and decode every file of one dataset folder.

    Every file that matches ``pattern`` ends up either in ``paths`` or in ``failures``. Colour
    conversions, resized images and failures are each reported in one log line and one
    :class:`~synthgate.errors.SynthgateWarning`.

    Parameters
    ----------
    root : str or PathLike
        Dataset folder.
    role : str
        Dataset role used in messages, e.g. ``"generated"``.
    pattern : str, default="**/*.png"
        Glob pattern relative to ``root``; see :func:`synthgate.images.list_images`.
    size : (int, int), default=WORKING_SIZE
        ``(height, width)`` to decode to.
    groups : None, "folder" or path to a CSV, default=None
        Patient groups; see :func:`synthgate.images.read_groups`.
    cache : FeatureCache or None, default=None
        Where decode records are cached by file SHA-256; None decodes every file.
    threads : int or None, default=None
        Decoding threads; None uses up to 4, capped by the CPU count.

    Raises
    ------
    DatasetError
        If the folder is missing or empty, no file is loadable, or ``groups`` does not match.
    """
    if not isinstance(role, str) or not role.strip():
        raise ValueError(f"role must be a non-empty string such as 'real' or 'generated'; got {role!r}")
    size = validate_size(size)
    if cache is not None and not isinstance(cache, FeatureCache):
        raise TypeError(f"cache must be a FeatureCache or None; got {type(cache).__name__}")
    cache = cache if cache is not None else FeatureCache(None)
    root = Path(root)

    files = images.list_images(root, pattern=pattern, role=role)

    namespace = cache_namespace("decode", DECODE_CACHE_VERSION, {"size": list(size), "pillow": PIL.__version__})

    # Reading, hashing and cache look-ups run in this thread, because a thread pool made the warm
    # path twice as slow (0.30 s against 0.15 s for 2000 files). Only cache misses use the pool.
    records = [_look_up(path, cache, namespace) for path in files]
    misses = [index for index, (_, record) in enumerate(records) if record is None]
    # An unreadable file has no hash and a record that did not come from the cache.
    from_cache = sum(1 for file_hash, record in records if record is not None and file_hash)

    decoder = functools.partial(_decode_file, cache=cache, namespace=namespace, size=size)
    decoded = _map_in_threads(decoder, [files[index] for index in misses], threads=threads,
                              description=f"decoding {role} images")
    for index, result in zip(misses, decoded):
        records[index] = result

    paths, hashes, infos, failures = [], [], [], []
    for path, (file_hash, record) in zip(files, records):
        if record["status"] == "ok":
            paths.append(path)
            hashes.append(file_hash)
            infos.append(ImageInfo.from_dict(record["info"]))
        else:
            failures.append(LoadFailure(path=path, reason=record["reason"]))

    _report(role, root, size, len(files), infos, failures, decoded=len(misses), from_cache=from_cache)

    if not paths:
        raise DatasetError(
            f"no loadable image in the {role} folder {root}: all {len(files)} files matching {pattern!r} failed: "
            f"{_describe_failures(failures, root)}"
        )

    group_names = images.read_groups(groups, root, paths)
    return ImageSet(
        role=role,
        root=root,
        paths=tuple(paths),
        file_sha256=tuple(hashes),
        infos=tuple(infos),
        groups=group_names,
        failures=tuple(failures),
        size=size,
    )


def _look_up(path: Path, cache: FeatureCache, namespace: str) -> tuple[str, dict | None]:
    """Return ``(file sha256, cached decode record or None)``; a read error gives ``("", failed record)``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return "", _unreadable_record(exc)
    file_hash = hashlib.sha256(data).hexdigest()

    record = cache.load_json(namespace, file_hash)
    if record is not None and not _is_valid_record(record):
        logger.warning("ignoring invalid decode record for %s in the cache; decoding again", path)
        record = None
    return file_hash, record


def _decode_file(path: Path, *, cache: FeatureCache, namespace: str, size: tuple[int, int]) -> tuple[str, dict]:
    """Decode one file and cache its record; ``record["status"]`` is ok, excluded or failed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return "", _unreadable_record(exc)
    file_hash = hashlib.sha256(data).hexdigest()

    try:
        array, info = images.decode_image(path, size=size, data=data, warn=False)
    except ImageDecodeError as exc:
        record = {"status": "failed", "reason": exc.reason}
    else:
        if info.is_constant:
            reason = f"constant image: every pixel is {int(array.flat[0])}"
            record = {"status": "excluded", "reason": reason, "info": info.to_dict()}
        elif array.max() < BODY_THRESHOLD:
            reason = (
                f"no body: no pixel reaches grey level {BODY_THRESHOLD} (soft tissue in a lung window), "
                f"the brightest is {int(array.max())}"
            )
            record = {"status": "excluded", "reason": reason, "info": info.to_dict()}
        else:
            record = {"status": "ok", "info": info.to_dict()}

    cache.save_json(namespace, file_hash, record)
    return file_hash, record


def _unreadable_record(exc: OSError) -> dict:
    # Not cached, because the cause is the file system and not the file's content.
    reason = f"cannot read file ({exc.strerror or exc}); check that it exists and is readable"
    return {"status": "failed", "reason": reason}


def _is_valid_record(record: dict) -> bool:
    status = record.get("status")
    if status in ("failed", "excluded"):
        return isinstance(record.get("reason"), str)
    if status == "ok":
        try:
            ImageInfo.from_dict(record.get("info"))
        except (TypeError, ValueError):
            return False
        return True
    return False


def _map_in_threads(
    function: Callable, items: Sequence, *, threads: int | None, description: str | None = None
) -> list:
    """Return ``[function(item) for item in items]``, computed in a thread pool, in order."""
    if threads is None:
        threads = min(_MAX_THREADS, os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None; got {threads!r}")

    progress = tqdm(
        total=len(items), desc=description, unit="file", leave=False,
        disable=description is None or not sys.stderr.isatty(),
    )
    with progress:
        if threads == 1 or len(items) < 2:
            results = []
            for item in items:
                results.append(function(item))
                progress.update()
            return results

        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = []
            for result in pool.map(function, items):
                results.append(result)
                progress.update()
            return results


def _report(role: str, root: Path, size: tuple[int, int], n_files: int, infos: list[ImageInfo],
            failures: list[LoadFailure], *, decoded: int, from_cache: int) -> None:
    resized = [info for info in infos if info.resized]
    conversions = Counter(info.conversion for info in infos if info.conversion != "none")
    logger.info(
        "%s: %d of %d files in %s loaded (%d decoded, %d decode records from the cache); "
        "%d resized, converted %s, %d excluded",
        role, len(infos), n_files, root, decoded, from_cache,
        len(resized), dict(conversions) or "none", len(failures),
    )

    if conversions["luminance"]:
        message = (
            f"{role}: {conversions['luminance']} of {len(infos)} images are colour and were converted to grey "
            "with ITU-R 601-2 luminance; CT slices should be single-channel, so check how the images were exported"
        )
        logger.warning(message)
        warnings.warn(message, SynthgateWarning, stacklevel=3)

    if resized:
        shapes = sorted({f"{info.width}x{info.height}" for info in resized})
        shown = ", ".join(shapes[:_MAX_LISTED]) + (", ..." if len(shapes) > _MAX_LISTED else "")
        message = (
            f"{role}: {len(resized)} of {len(infos)} images were not {size[1]}x{size[0]} (width x height) "
            f"and were resized with Lanczos; found {shown}"
        )
        logger.warning(message)
        warnings.warn(message, SynthgateWarning, stacklevel=3)

    if failures:
        message = f"{role}: {len(failures)} of {n_files} files excluded: {_describe_failures(failures, root)}"
        logger.warning(message)
        warnings.warn(message, SynthgateWarning, stacklevel=3)


def _describe_failures(failures: Sequence[LoadFailure], root: Path) -> str:
    listed = failures[:_MAX_LISTED]
    shown = "; ".join(f"{failure.path.relative_to(root).as_posix()}: {failure.reason}" for failure in listed)
    if len(failures) > _MAX_LISTED:
        shown += f"; and {len(failures) - _MAX_LISTED} more"
    return shown
