"""The behaviour that every built-in encoder shares: params, batching, threads, lazy loading."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import EncoderLoadError, EncoderUnavailableError
from ..features.body_mask import check_image_stack
from .params import validate_batch_size, validate_threads
from .preprocessing import Preprocessing, preprocess
from .weights import check_state_dict, tensor_shapes

__all__ = ["TorchEncoder"]

logger = logging.getLogger(__name__)


class TorchEncoder:
    """A PyTorch model that maps grey slices to one embedding row per slice.

    Subclasses locate and hash their weights in ``__init__`` and pass what they found here,
    after setting the attributes that :meth:`_build_architecture` needs. They implement
    :meth:`_build_architecture`, :meth:`_read_weights` and :meth:`_embed`.

    The constructor compares the keys and shapes in the weights file with those of the
    architecture, built on torch's ``meta`` device (no memory, no computation), so a file that
    does not fit raises :class:`~synthgate.errors.EncoderLoadError` when the encoder is built.
    The model itself is loaded on the first call of :meth:`transform` with at least one image,
    and is not pickled, so a copy sent to a worker process loads its own.

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
    architecture : str
        The model in words, for error messages, for example ``"EfficientNet-Lite0"``.
    remedy : str
        What to do when the weights file cannot be used, ending a message that names the file.
    preprocessing : Preprocessing
        How slices become the model's input.
    dimension : int
        Columns of the embedding.
    extra_params : mapping
        More entries of ``params`` that change the output (for example the config's hash).
    batch_size : int
        Images per forward pass; changes memory and speed. Embeddings computed with different
        batch sizes or thread counts agree to float32 rounding, not bit for bit, because the
        order of the sums changes. The cache key leaves both out on purpose.
    threads : int or None
        ``torch.set_num_threads`` during :meth:`transform`, restored afterwards; None leaves
        torch's setting.

    Attributes
    ----------
    name, version, params, feature_names
        As :class:`~synthgate.features.FeatureExtractor` requires. ``params`` contains the model
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
        architecture: str,
        remedy: str,
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
        self.architecture = architecture
        self.remedy = remedy
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
        self._check_weights_file()

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
        EncoderLoadError
            If the weights file, read again here, cannot be loaded into the model, or the model
            returns non-finite values, which points to broken weights.
        RuntimeError
            If the model returns an embedding of the wrong width, which points to a bug.
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
        finite_rows = np.all(np.isfinite(embeddings), axis=1)
        if not np.all(finite_rows):
            raise EncoderLoadError(
                f"embeddings of encoder {self.name!r} are invalid: {np.count_nonzero(~finite_rows)} of "
                f"{len(images)} contain NaN or infinite values, so the weights file {self.weights_path} may "
                f"contain them too; {self.remedy}"
            )
        return embeddings

    def _loaded_model(self):
        if self._model is None:
            started = time.perf_counter()
            with self._optional_packages():
                model = self._load_model()
            model.eval()
            self._model = model
            logger.info(
                "loaded encoder %s (%s) from %s in %.1f s", self.name, self.model_id, self.weights_path,
                time.perf_counter() - started,
            )
        return self._model

    def _load_model(self):
        model = self._build_architecture()
        self._check_architecture(model)
        state = self._read_weights()
        # Checked again because the file may have changed since the constructor read it.
        self._check_shapes(tensor_shapes(state), model)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            # Not expected after the check above, but its message would list hundreds of keys.
            reason = " ".join(str(error).split())[:300]
            raise EncoderLoadError(
                f"weights file {self.weights_path} could not be loaded into {self.architecture} ({reason}); "
                f"{self.remedy}"
            ) from None
        return self._prepare_model(model)

    def _check_weights_file(self) -> None:
        import torch

        with self._optional_packages():
            try:
                with torch.device("meta"):
                    model = self._build_architecture()
            except (NotImplementedError, RuntimeError, EncoderLoadError):
                # Building code that reads tensor values fails on meta tensors. A real config
                # error raises again on the CPU below, outside this handler, so it is reported once.
                model = None
            if model is None:
                model = self._build_architecture()
            self._check_architecture(model)
            self._check_shapes(self._weight_shapes(), model)

    def _check_shapes(self, shapes: Mapping[str, Any], model) -> None:
        check_state_dict(
            self.weights_path, shapes, tensor_shapes(model.state_dict()), architecture=self.architecture,
            remedy=self.remedy,
        )

    @contextlib.contextmanager
    def _optional_packages(self):
        try:
            yield
        except ImportError as error:
            raise EncoderUnavailableError(
                f"encoder {self.name!r} could not import an optional package: {error}"
            ) from None

    def _build_architecture(self):
        """Return the model (a torch.nn.Module) with its initial parameters, not the weights."""
        raise NotImplementedError

    def _read_weights(self) -> Mapping[str, Any]:
        """Return the state dict that the model loads, read from :attr:`weights_path`.

        Raises :class:`~synthgate.errors.EncoderLoadError` if the file cannot be read.
        """
        raise NotImplementedError

    def _weight_shapes(self) -> Mapping[str, Any]:
        """Return the shape of each entry of :meth:`_read_weights`, reading as little as possible."""
        return tensor_shapes(self._read_weights())

    def _check_architecture(self, model) -> None:
        """Raise EncoderLoadError if the model does not fit the preprocessing; model may be on meta."""

    def _prepare_model(self, model):
        """Return the model to embed with, after its weights are loaded."""
        return model

    def _embed(self, model, batch):
        """Return the embeddings of one preprocessed batch as a (batch, dimension) tensor."""
        raise NotImplementedError
