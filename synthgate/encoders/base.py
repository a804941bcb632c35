"""The behaviour that every built-in encoder shares: params, batching, threads, lazy loading."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import EncoderUnavailableError
from ..features.body_mask import check_image_stack
from .preprocessing import Preprocessing, preprocess

__all__ = ["TorchEncoder", "validate_batch_size", "validate_threads", "validate_weights"]

logger = logging.getLogger(__name__)


def validate_batch_size(batch_size) -> int:
    """Return ``batch_size`` as an int after checking that it is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    return int(batch_size)


def validate_threads(threads) -> int | None:
    """Return ``threads`` as an int or None after checking that it is None or a positive integer."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be None or a positive integer; got {threads!r}")
    return int(threads)


def validate_weights(weights) -> Path | None:
    """Return ``weights`` as a Path or None after checking its type (not its existence)."""
    if weights is None:
        return None
    if not isinstance(weights, (str, Path)) or not str(weights).strip():
        raise TypeError(f"weights must be None, a non-empty str or a pathlib.Path; got {weights!r}")
    return Path(weights).expanduser()


class TorchEncoder:
    """A PyTorch model that maps grey slices to one embedding row per slice.

    Subclasses locate and hash their weights in ``__init__`` and pass what they found here. They
    implement :meth:`_load_model`, which builds the model and loads the weights, and
    :meth:`_embed`, which maps one preprocessed batch to embeddings. The model is loaded on the first call of
    :meth:`transform` with at least one image, and is not pickled, so a copy sent to a worker
    process loads its own.

    Parameters
    ----------
    name : str
        The encoder's name; the first part of its cache namespace and of its column names.
    kind : str
        The built-in kind that defines the architecture (``name`` for a built-in encoder).
    model_id : str
        The model's identifier, for example ``"hf-hub:org/name"``.
    weights_path : Path
        The weights file that is loaded.
    weights_sha256 : str
        Its SHA-256.
    preprocessing : Preprocessing
        How slices become the model's input.
    dimension : int
        Columns of the embedding.
    extra_params : mapping
        More entries of ``params`` that change the output (for example the config's hash).
    batch_size : int
        Images per forward pass; changes memory and speed, not the embeddings.
    threads : int or None
        ``torch.set_num_threads`` during :meth:`transform`, restored afterwards; None leaves
        torch's setting.

    Attributes
    ----------
    name, version, params, feature_names
        As :class:`~synthgate.features.FeatureExtractor` requires. ``params`` holds the model
        id, the weights' SHA-256 and the preprocessing, never the batch size or thread count.
    provenance : dict
        For the report: encoder name, kind, model id, weights path and SHA-256, preprocessing,
        embedding dimension.
    """

    version = 1

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        model_id: str,
        weights_path: Path,
        weights_sha256: str,
        preprocessing: Preprocessing,
        dimension: int,
        extra_params: Mapping[str, Any] = (),
        batch_size: int = 32,
        threads: int | None = None,
    ):
        self.name = name
        self.kind = kind
        self.model_id = model_id
        self.weights_path = Path(weights_path)
        self.weights_sha256 = weights_sha256
        self.preprocessing = preprocessing
        self.dimension = int(dimension)
        self.batch_size = validate_batch_size(batch_size)
        self.threads = validate_threads(threads)

        self.params = {
            "model": model_id,
            "weights_sha256": weights_sha256,
            "preprocessing": preprocessing.as_dict(),
            **dict(extra_params),
        }
        self.feature_names = tuple(f"{name}_{index:04d}" for index in range(self.dimension))
        self.provenance = {
            "encoder": name,
            "kind": kind,
            "model": model_id,
            "weights_path": str(self.weights_path),
            "weights_sha256": weights_sha256,
            "preprocessing": preprocessing.as_dict(),
            "embedding_dimension": self.dimension,
        }
        self._model = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model_id!r}, weights={str(self.weights_path)!r})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Embed each slice.

        Parameters
        ----------
        images : ndarray of shape (n, H, W), uint8
            Grey levels 0-255; any size, resized as :attr:`preprocessing` sets.

        Returns
        -------
        ndarray of shape (n, len(feature_names)), float32
            One embedding per slice. With n = 0 the model is not loaded.

        Raises
        ------
        ValueError
            If ``images`` is not a 3-D uint8 stack.
        RuntimeError
            If the model returns an embedding of the wrong width or a non-finite value, which
            points to broken weights.
        """
        images = check_image_stack(images)
        if len(images) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)

        import torch

        model = self._loaded_model()
        previous_threads = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            rows = []
            with torch.inference_mode():
                for start in range(0, len(images), self.batch_size):
                    batch = preprocess(images[start : start + self.batch_size], self.preprocessing)
                    rows.append(self._embed(model, batch).to(torch.float32).numpy())
        finally:
            if self.threads is not None:
                torch.set_num_threads(previous_threads)

        embeddings = np.concatenate(rows, axis=0)
        if embeddings.shape != (len(images), self.dimension):
            raise RuntimeError(
                f"encoder {self.name!r} must return shape ({len(images)}, {self.dimension}); got {embeddings.shape}"
            )
        if not np.all(np.isfinite(embeddings)):
            raise RuntimeError(
                f"encoder {self.name!r} returned non-finite embeddings; check the weights file {self.weights_path}"
            )
        return embeddings

    def _loaded_model(self):
        if self._model is None:
            started = time.perf_counter()
            try:
                model = self._load_model()
            except ImportError as error:
                raise EncoderUnavailableError(
                    f"encoder {self.name!r} could not import an optional package: {error}"
                ) from error
            model.eval()
            self._model = model
            logger.info(
                "loaded encoder %s (%s) from %s in %.1f s", self.name, self.model_id, self.weights_path,
                time.perf_counter() - started,
            )
        return self._model

    def _load_model(self):
        """Build the model and load the weights; return a torch.nn.Module."""
        raise NotImplementedError

    def _embed(self, model, batch):
        """Return the embeddings of one preprocessed batch as a (batch, dimension) tensor."""
        raise NotImplementedError
