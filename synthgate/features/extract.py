"""Run an extractor over an image set, reusing cached feature rows."""

from __future__ import annotations

import logging
import sys

import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from ..cache import FeatureCache, cache_namespace
from ..errors import DegenerateInputError

__all__ = ["compute_features"]

logger = logging.getLogger(__name__)

_PATHS_SHOWN = 5


def compute_features(
    image_set,
    extractor,
    *,
    cache: FeatureCache | None = None,
    n_jobs: int = 1,
    batch_size: int = 256,
) -> np.ndarray:
    """Compute one feature row per image, extracting only the rows missing from the cache.

    The cache namespace is ``cache_namespace(extractor.name, extractor.version,
    extractor.params)`` and the key of each row is the image file's SHA-256, so a row is reused
    exactly when the file bytes, the extractor version and its params are unchanged. Files with
    identical bytes are extracted once and share the row.

    Parameters
    ----------
    image_set : ImageSet
        The images (:class:`~synthgate.dataset.ImageSet`); uses ``file_sha256``, ``paths``,
        ``role``, ``size``, ``len`` and ``images(indices)``.
    extractor : FeatureExtractor
        For example ``get_extractor("texture")``.
    cache : FeatureCache or None, default=None
        Where rows are looked up and saved; None extracts everything and saves nothing.
    n_jobs : int, default=1
        Worker processes (joblib ``loky`` backend) that decode and extract. Each batch is split
        into ``n_jobs`` chunks. Starting the workers took about 1 s on the first call in a
        process, and later calls reused them, so more than one job pays off only for a few
        hundred images or more. Only the images missing from the cache count.
    batch_size : int, default=256
        Images decoded and extracted at a time; memory is about ``batch_size * H * W`` bytes
        plus the extractor's temporaries.

    Returns
    -------
    ndarray of shape (len(image_set), len(extractor.feature_names))
        Rows in ``image_set`` order, with the extractor's dtype (float32 for ``pixels``,
        float64 for ``texture``). An empty set gives an array with 0 rows.

    Raises
    ------
    ValueError
        If ``n_jobs`` or ``batch_size`` is not a positive integer, or the extractor returns
        rows of the wrong shape.
    DegenerateInputError
        If the extractor rejects an image (for example a slice with no body); the message names
        the files. Rows extracted before the failure are already saved in the cache.
    """
    for value, label in ((n_jobs, "n_jobs"), (batch_size, "batch_size")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive integer; got {value!r}")

    n_features = len(extractor.feature_names)
    namespace = cache_namespace(extractor.name, extractor.version, extractor.params)
    keys = tuple(image_set.file_sha256)
    role = getattr(image_set, "role", "")

    # The dtype of an empty transform is the dtype of every row, cached or extracted.
    dtype = np.asarray(extractor.transform(np.empty((0, *image_set.size), dtype=np.uint8))).dtype

    first_index = {}
    for index, key in enumerate(keys):
        first_index.setdefault(key, index)

    rows_by_key = {}
    invalid = []
    if cache is not None:
        for key, row in cache.load_many(namespace, first_index).items():
            if row.shape == (n_features,) and row.dtype == dtype and np.all(np.isfinite(row)):
                rows_by_key[key] = row
            else:
                invalid.append(key)
    if invalid:
        logger.warning(
            "ignoring %d cached %s rows in %s that are not finite %s of shape (%d,), first key %s; "
            "extracting them again",
            len(invalid), extractor.name, namespace, dtype, n_features, invalid[0],
        )

    missing = [index for key, index in first_index.items() if key not in rows_by_key]
    logger.info(
        "%s features of %d %s images (%d distinct files): %d cache hits, %d misses (namespace %s)",
        extractor.name, len(keys), role, len(first_index), len(rows_by_key), len(missing), namespace,
    )

    if missing:
        rows_by_key.update(_extract_missing(image_set, extractor, missing, namespace, cache, n_jobs, batch_size, dtype))

    result = np.empty((len(keys), n_features), dtype=dtype)
    for index, key in enumerate(keys):
        result[index] = rows_by_key[key]
    return result


def _extract_missing(image_set, extractor, missing, namespace, cache, n_jobs, batch_size, dtype) -> dict:
    """Extract the images at positions ``missing`` batch by batch; save and return rows by key."""
    keys = image_set.file_sha256
    n_features = len(extractor.feature_names)
    role = getattr(image_set, "role", "")
    n_jobs = min(n_jobs, len(missing))
    rows_by_key = {}

    progress = tqdm(
        total=len(missing), desc=f"{extractor.name} features ({role})", unit="img",
        leave=False, disable=not sys.stderr.isatty(),
    )
    with progress, (Parallel(n_jobs=n_jobs, backend="loky") if n_jobs > 1 else _SerialPool()) as pool:
        for start in range(0, len(missing), batch_size):
            indices = missing[start : start + batch_size]
            features = _extract_batch(image_set, extractor, indices, pool, n_jobs)
            if features.shape != (len(indices), n_features):
                raise ValueError(
                    f"extractor {extractor.name!r} must return shape ({len(indices)}, {n_features}); "
                    f"got {features.shape}"
                )

            batch_rows = {keys[index]: row for index, row in zip(indices, features.astype(dtype, copy=False))}
            if cache is not None:
                cache.save_many(namespace, batch_rows)
            rows_by_key.update(batch_rows)
            progress.update(len(indices))
    return rows_by_key


class _SerialPool:
    """A stand-in for a joblib ``Parallel`` pool that runs the calls in this process."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def __call__(self, calls):
        return [function(*args, **kwargs) for function, args, kwargs in calls]


def _extract_batch(image_set, extractor, indices, pool, n_jobs) -> np.ndarray:
    # Each worker decodes its own chunk, so decoding runs in parallel too and only file
    # positions, not pixels, are sent to the workers.
    bounds = np.linspace(0, len(indices), min(n_jobs, len(indices)) + 1).astype(int)
    chunks = [(indices[start:stop], start) for start, stop in zip(bounds[:-1], bounds[1:])]
    # A worker decodes in one thread, because n_jobs workers already use n_jobs cores.
    threads = 1 if n_jobs > 1 else None
    results = pool(delayed(_extract_chunk)(image_set, extractor, chunk, offset, threads) for chunk, offset in chunks)

    for outcome in results:
        if isinstance(outcome, _ChunkFailure):
            raise _name_files(outcome, image_set, extractor, indices)
    return np.concatenate([np.asarray(outcome) for outcome in results], axis=0)


class _ChunkFailure:
    """A DegenerateInputError from one chunk, with its rows relative to the whole batch."""

    def __init__(self, error: DegenerateInputError, offset: int):
        self.message = str(error)
        self.rows = tuple(offset + row for row in getattr(error, "rows", ()))
        self.reason = getattr(error, "reason", None)


def _extract_chunk(image_set, extractor, indices, offset: int, threads: int | None):
    images = image_set.images(indices, threads=threads)
    # Returned rather than raised so that the batch offset travels back from a worker process.
    try:
        return extractor.transform(images)
    except DegenerateInputError as error:
        return _ChunkFailure(error, offset)


def _name_files(failure: _ChunkFailure, image_set, extractor, indices) -> DegenerateInputError:
    if not failure.rows or failure.reason is None:
        return DegenerateInputError(f"{extractor.name} features: {failure.message}")
    paths = [str(image_set.paths[indices[row]]) for row in failure.rows]
    shown = ", ".join(paths[:_PATHS_SHOWN])
    more = f" and {len(paths) - _PATHS_SHOWN} more" if len(paths) > _PATHS_SHOWN else ""
    error = DegenerateInputError(
        f"{extractor.name} features cannot be computed for {len(paths)} image(s): {shown}{more}: "
        f"the image {failure.reason}. Remove the file or fix it and run again."
    )
    error.paths = tuple(paths)
    return error
