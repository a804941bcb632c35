"""The ``resnext101_32x8d`` encoder: torchvision ResNeXt-101 32x8d pooled features, 2048 columns."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .base import TorchEncoder
from .params import validate_weights
from .preprocessing import PRESETS
from .weights import file_sha256, load_torch_state_dict, torch_hub_checkpoints_dir, weights_not_found

__all__ = ["ResNeXt101Encoder", "TORCHVISION_FILES"]

logger = logging.getLogger(__name__)

DIMENSION = 2048

# torchvision 0.29 ResNeXt101_32X8D_Weights: the file name of each ImageNet release. The 8 hex
# digits are the start of the file's SHA-256 (torch.hub checks them on download), so they
# identify a release whatever the file is called.
TORCHVISION_FILES = {
    "IMAGENET1K_V2": "resnext101_32x8d-110c445d.pth",
    "IMAGENET1K_V1": "resnext101_32x8d-8ba56ff5.pth",
}
_HASH_PREFIX = {release: re.search(r"-([0-9a-f]{8})\.pth$", file).group(1) for release, file in TORCHVISION_FILES.items()}
_CACHE_PATTERN = "resnext101_32x8d-*.pth"

# torchvision's DEFAULT release, whose preprocessing is used for weights of unknown origin.
_DEFAULT_RELEASE = "IMAGENET1K_V2"

_EXPECTED = "a state dict of torchvision's resnext101_32x8d saved with torch.save"


class ResNeXt101Encoder(TorchEncoder):
    """torchvision ``resnext101_32x8d`` with the classifier replaced by the identity.

    The embedding is the global average pool of the last stage (2048 values), the input of
    the ImageNet classifier. The architecture is built with ``weights=None`` and the state dict
    is loaded from a local file, so torchvision never downloads.

    The preprocessing depends on the release: IMAGENET1K_V1 resizes to 256, IMAGENET1K_V2 to
    232, both crop 224. The release is recognised by the SHA-256 prefix in torchvision's file
    names. Other weights (fine-tuned, or random in tests) get the V2 recipe, which is logged.

    Parameters
    ----------
    name : str, default="resnext101_32x8d"
    weights : str or Path, optional
        A state dict of the torchvision architecture saved with ``torch.save``. Default: the
        torchvision file in torch hub's ``checkpoints`` folder (``resnext101_32x8d-*.pth``,
        V2 before V1 when both are there).
    batch_size : int, default=32
    threads : int or None, default=None
        See :class:`~synthgate.encoders.base.TorchEncoder`.

    Raises
    ------
    WeightsNotFoundError
        If ``weights`` is not a file, or no weights file is in the torch hub cache.
    EncoderLoadError
        If the weights file is not a readable state dict, or its keys or shapes are not those
        of torchvision's resnext101_32x8d.
    """

    def __init__(self, *, name: str = "resnext101_32x8d", weights=None, batch_size: int = 32, threads=None):
        weights = validate_weights(weights)
        weights_path = _locate_weights(name, weights)
        digest = file_sha256(weights_path)
        release = _release_of(weights_path, digest)
        if weights is None:
            remedy = f"replace it with {_file_list()}, or set weights to {_EXPECTED}"
        else:
            remedy = (
                f"set weights to {_EXPECTED}, or remove the weights key to use torchvision's file in "
                f"{torch_hub_checkpoints_dir()}"
            )
        super().__init__(
            name=name,
            kind="resnext101_32x8d",
            model_id="torchvision.models.resnext101_32x8d",
            weights_path=weights_path,
            weights_sha256=digest,
            architecture="torchvision's resnext101_32x8d",
            remedy=remedy,
            preprocessing=PRESETS[f"resnext101_32x8d/{release or _DEFAULT_RELEASE}"],
            dimension=DIMENSION,
            extra_params={"output": "global_average_pool"},
            batch_size=batch_size,
            threads=threads,
        )
        self.provenance["release"] = release

    def _build_architecture(self):
        from torchvision.models import resnext101_32x8d

        return resnext101_32x8d(weights=None)

    def _read_weights(self):
        return load_torch_state_dict(self.weights_path, remedy=self.remedy)

    def _prepare_model(self, model):
        import torch

        # The ImageNet classifier's weights are loaded but unused: its input is the embedding.
        model.fc = torch.nn.Identity()
        return model

    def _embed(self, model, batch):
        return model(batch)


def _locate_weights(name: str, weights: Path | None) -> Path:
    if weights is not None:
        if weights.is_file():
            return weights
        state = "a folder, not a file" if weights.is_dir() else "missing"
        checkpoints = torch_hub_checkpoints_dir()
        raise weights_not_found(
            name, [f"{weights} (the weights parameter; {state})"], expected=_EXPECTED,
            cache_hint=f"leave weights unset and put {_file_list()} into {checkpoints}",
        )

    checkpoints = torch_hub_checkpoints_dir()
    preferred = [checkpoints / file for file in TORCHVISION_FILES.values()]
    found = [path for path in preferred if path.is_file()]
    found += sorted(path for path in checkpoints.glob(_CACHE_PATTERN) if path.is_file() and path not in found)
    if found:
        if len(found) > 1:
            logger.info("%s: using %s of %d weights files in %s", name, found[0].name, len(found), checkpoints)
        return found[0]
    raise weights_not_found(
        name, [f"{checkpoints / _CACHE_PATTERN} (the torch hub cache)"], expected=_EXPECTED,
        cache_hint=f"put {_file_list()} into {checkpoints} (torch.hub.get_dir()/checkpoints)",
    )


def _file_list() -> str:
    return " or ".join(f"torchvision's {file} ({release})" for release, file in TORCHVISION_FILES.items())


def _release_of(path: Path, digest: str) -> str | None:
    for release, prefix in _HASH_PREFIX.items():
        if digest.startswith(prefix):
            return release
    for release, file in TORCHVISION_FILES.items():
        if path.name == file:
            logger.warning(
                "%s is named like torchvision's %s weights but its SHA-256 starts with %s, not %s; "
                "the file may be truncated or modified",
                path, release, digest[:8], _HASH_PREFIX[release],
            )
    logger.info("%s: weights of unknown release; using the preprocessing of %s", path, _DEFAULT_RELEASE)
    return None
