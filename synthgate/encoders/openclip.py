"""The ``open_clip`` and ``biomedclip`` encoders: the image tower of an open_clip model.

Only the image tower is built (open_clip's own ``_build_vision_tower``, from the model's
config) and only its ``visual.*`` weights are loaded. The checkpoint is a ``.safetensors`` file
or a file saved with ``torch.save``, read with ``weights_only=True``, so TorchScript archives
are not accepted. As in open_clip's ``load_state_dict``, a ``state_dict`` entry is unwrapped
and a ``module.`` prefix removed. ``open_clip.create_model`` would also build the text tower,
and for BiomedCLIP that tower is a Hugging Face PubMedBERT: it needs the ``transformers`` package and
the BERT config from the Hugging Face hub, neither of which an image embedding uses. The
embedding is ``encode_image`` of open_clip, L2-normalised: the image tower's output.

Weights and config are read from local files only. ``HF_HUB_OFFLINE=1`` and
``TRANSFORMERS_OFFLINE=1`` are set (unless already set) before open_clip or huggingface_hub is
imported, and the Hugging Face cache is read with ``huggingface_hub.try_to_load_from_cache``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ..errors import EncoderLoadError, WeightsNotFoundError
from .base import TorchEncoder
from .params import HF_HUB_PREFIX, validate_model, validate_weights
from .preprocessing import Preprocessing, preprocessing_from_open_clip
from .weights import (
    file_sha256,
    find_in_hf_cache,
    hf_hub_cache_dir,
    load_safetensors,
    load_torch_state_dict,
    safetensors_shapes,
    set_offline_environment,
    tensor_shapes,
    weights_not_found,
)

__all__ = ["OpenClipEncoder", "BiomedClipEncoder", "BIOMEDCLIP_MODEL", "CONFIG_FILE", "CHECKPOINT_FILES"]

logger = logging.getLogger(__name__)

BIOMEDCLIP_MODEL = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
CONFIG_FILE = "open_clip_config.json"

# The checkpoint names open_clip 3.3.0 prefers in a model folder (factory._find_checkpoint_in_dir).
CHECKPOINT_FILES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
)
_CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_BUILT_IN_CONFIG = "open_clip built-in config"


class OpenClipEncoder(TorchEncoder):
    """The L2-normalised image embedding of any open_clip model, from local weights.

    Parameters
    ----------
    model : str
        An open_clip architecture (``open_clip.list_models()``, for example ``"ViT-B-16"``) or
        a Hugging Face hub id ``"hf-hub:org/name"``. When ``weights`` is a folder with an
        ``open_clip_config.json``, that config defines the architecture and ``model`` only
        names it.
    name : str, default="open_clip"
        The encoder's name.
    weights : str or Path, optional
        A checkpoint file, or a folder with ``open_clip_config.json`` and a checkpoint (open_clip's
        preferred names first: ``open_clip_model.safetensors``, ``open_clip_pytorch_model.bin``,
        ...). The config is read from, in order: the folder, the checkpoint's folder, the
        Hugging Face cache (hf-hub ids), open_clip's built-in config of ``model``. Default: the
        Hugging Face cache of an hf-hub id.
    batch_size : int, default=32
    threads : int or None, default=None
        See :class:`~synthgate.encoders.base.TorchEncoder`.
    kind : str, default="open_clip"
        The built-in kind recorded in the provenance.

    Raises
    ------
    WeightsNotFoundError
        If no checkpoint, or no config for the checkpoint, is found; the message lists every
        place looked at.
    EncoderLoadError
        If ``model`` is invalid, or the config is not an open_clip image-text model config (CoCa
        models are not supported) or describes no image tower that open_clip can build. Also
        if the checkpoint is unreadable, or its image tower's keys or shapes differ from the
        config's.

    Notes
    -----
    The preprocessing comes from the config's ``preprocess_cfg`` merged over open_clip's
    defaults, as ``open_clip.create_model`` does. A bare checkpoint file of a built-in
    architecture therefore gets open_clip's default preprocessing (OpenAI CLIP mean and std,
    bicubic). That is not right for every release, because SigLIP uses mean and std 0.5. Put
    the release's ``open_clip_config.json`` next to the file to pin it.
    """

    def __init__(self, *, model: str, name: str = "open_clip", weights=None, batch_size: int = 32,
                 threads=None, kind: str = "open_clip"):
        model = validate_model(model)
        weights = validate_weights(weights)
        set_offline_environment()

        checkpoint, config, config_source = _resolve(name, model, weights)
        built_in = config_source.startswith(_BUILT_IN_CONFIG)
        self.config_label = config_source if built_in else f"open_clip config {config_source}"
        self.model_cfg = _model_config(config, self.config_label)
        preprocessing = _preprocessing(config, self.model_cfg, self.config_label)
        canonical = json.dumps(self.model_cfg, sort_keys=True, separators=(",", ":"))
        super().__init__(
            name=name,
            kind=kind,
            model_id=model,
            weights_path=checkpoint,
            weights_sha256=file_sha256(checkpoint),
            architecture=f"the image tower of {model} that the {self.config_label} describes",
            remedy=_remedy(model, self.config_label, from_cache=weights is None),
            preprocessing=preprocessing,
            dimension=self.model_cfg["embed_dim"],
            extra_params={
                "config_sha256": hashlib.sha256(canonical.encode()).hexdigest(),
                "output": "encode_image_l2_normalised",
            },
            batch_size=batch_size,
            threads=threads,
        )
        self.provenance["config"] = config_source

    def _build_architecture(self):
        set_offline_environment()
        from open_clip.model import _build_vision_tower

        vision_cfg = dict(self.model_cfg["vision_cfg"])
        # A timm tower would otherwise download ImageNet weights before ours replace them.
        vision_cfg["timm_model_pretrained"] = False
        try:
            return _build_vision_tower(
                self.model_cfg["embed_dim"], vision_cfg, quick_gelu=bool(self.model_cfg.get("quick_gelu", False))
            )
        except ImportError:
            raise
        except Exception as error:
            # The config is the only input of open_clip's builder, so any other failure is a config error.
            raise EncoderLoadError(
                f"{self.config_label} is invalid: open_clip cannot build its image tower "
                f"({type(error).__name__}: {error}). Correct its vision_cfg"
            ) from None

    def _read_weights(self):
        if self.weights_path.suffix == ".safetensors":
            state = load_safetensors(self.weights_path, remedy=self.remedy)
        else:
            state = load_torch_state_dict(self.weights_path, remedy=self.remedy)
        return self._image_tower(state)

    def _weight_shapes(self):
        if self.weights_path.suffix == ".safetensors":
            shapes = safetensors_shapes(self.weights_path, remedy=self.remedy)
        else:
            shapes = tensor_shapes(load_torch_state_dict(self.weights_path, remedy=self.remedy))
        return self._image_tower(shapes)

    def _image_tower(self, state: dict) -> dict:
        """Return the checkpoint's ``visual.*`` entries without that prefix (and any ``module.`` before it)."""
        if all(isinstance(key, str) and key.startswith("module.") for key in state):
            state = {key.removeprefix("module."): value for key, value in state.items()}
        visual = {
            key.removeprefix("visual."): value
            for key, value in state.items() if isinstance(key, str) and key.startswith("visual.")
        }
        if not visual:
            raise EncoderLoadError(
                f"weights file {self.weights_path} has no image tower weights (keys starting with 'visual.'); "
                f"its first keys are {list(state)[:5]}; {self.remedy}"
            )
        return visual

    def _check_architecture(self, model) -> None:
        # open_clip builds a timm trunk at the trunk's own input size, whatever image_size the
        # config sets, so the size that the patch embedding accepts is checked as well.
        patch_embed = getattr(getattr(model, "trunk", None), "patch_embed", None)
        for size in (getattr(model, "image_size", None), getattr(patch_embed, "img_size", None)):
            if size is None:
                continue
            pixels = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
            if pixels != (self.preprocessing.crop, self.preprocessing.crop):
                raise EncoderLoadError(
                    f"{self.config_label} is invalid: its image tower takes {pixels[0]} x {pixels[1]} pixels but "
                    f"its preprocessing crops {self.preprocessing.crop}; set image_size in its vision_cfg to "
                    f"the tower's input size"
                )

    def _embed(self, model, batch):
        import torch.nn.functional as functional

        return functional.normalize(model(batch), dim=-1)


class BiomedClipEncoder(OpenClipEncoder):
    """BiomedCLIP's image tower (ViT-B/16, 512-d embedding), from the Hugging Face cache.

    BiomedCLIP (Zhang et al., "A Multimodal Biomedical Foundation Model Trained from Fifteen
    Million Image-Text Pairs", NEJM AI 2025, doi:10.1056/AIoa2400640) is the open_clip model
    ``hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224``. Only its
    ``open_clip_config.json`` and ``open_clip_pytorch_model.bin`` are needed, in the Hugging Face
    cache or in a folder passed as ``weights``. The PubMedBERT text tower is not built.

    Parameters
    ----------
    name : str, default="biomedclip"
    weights : str or Path, optional
        As for :class:`OpenClipEncoder`.
    batch_size : int, default=32
    threads : int or None, default=None
    """

    def __init__(self, *, name: str = "biomedclip", weights=None, batch_size: int = 32, threads=None):
        super().__init__(
            model=BIOMEDCLIP_MODEL, name=name, weights=weights, batch_size=batch_size, threads=threads,
            kind="biomedclip",
        )


def _default_image_size():
    from open_clip.model import CLIPVisionCfg

    return CLIPVisionCfg.image_size


def _resolve(name: str, model: str, weights: Path | None) -> tuple[Path, dict, str]:
    """Return (checkpoint file, config dict, where the config came from)."""
    repo_id = model[len(HF_HUB_PREFIX):] if model.startswith(HF_HUB_PREFIX) else None
    expected = f"an open_clip checkpoint of {model}, or a folder with it and its {CONFIG_FILE}"
    searched = []

    if weights is not None:
        if weights.is_dir():
            checkpoint = _checkpoint_in_folder(weights)
            if checkpoint is None:
                searched.append(f"{weights} (the weights parameter; no {' or '.join(_CHECKPOINT_SUFFIXES)} checkpoint)")
        elif weights.is_file():
            checkpoint = weights
        else:
            checkpoint = None
            searched.append(f"{weights} (the weights parameter; missing)")
        if checkpoint is None:
            raise weights_not_found(name, searched, expected=expected, cache_hint=_cache_hint(repo_id))
        config, config_source = _config_for_checkpoint(name, model, checkpoint)
        return checkpoint, config, config_source

    if repo_id is None:
        raise WeightsNotFoundError(
            f"weights of encoder {name!r} not found: open_clip model {model!r} is not a hub id, and only "
            f"hf-hub: ids are looked up in the Hugging Face cache. Set weights = \"/path/to/weights\" in the "
            f"[encoders.{name}] table of thresholds.toml (or pass weights= to get_encoder) to {expected}. "
            "synthgate never downloads weights.",
        )
    snapshot = _snapshot_description(repo_id)
    checkpoint = find_in_hf_cache(repo_id, CHECKPOINT_FILES)
    config_path = find_in_hf_cache(repo_id, [CONFIG_FILE])
    if checkpoint is None:
        missing = "a checkpoint" if config_path is not None else f"{CONFIG_FILE} and a checkpoint"
        searched.append(
            f"{snapshot} (the Hugging Face cache; {missing} missing; checkpoint names tried: "
            f"{', '.join(CHECKPOINT_FILES)})"
        )
        raise weights_not_found(name, searched, expected=expected, cache_hint=_cache_hint(repo_id))
    if config_path is None:
        raise _config_not_found(
            name, checkpoint, [f"{checkpoint.parent / CONFIG_FILE} (the Hugging Face cache; missing)"],
            hint=f"Put the {CONFIG_FILE} of {repo_id} into that snapshot folder, next to the checkpoint",
        )
    return checkpoint, _read_config(config_path), str(config_path)


def _checkpoint_in_folder(folder: Path) -> Path | None:
    for file in CHECKPOINT_FILES:
        if (folder / file).is_file():
            return folder / file
    others = sorted(path for path in folder.iterdir() if path.suffix in _CHECKPOINT_SUFFIXES and path.is_file())
    if len(others) > 1:
        raise EncoderLoadError(
            f"weights folder {folder} contains several checkpoints ({', '.join(path.name for path in others)}); "
            "set weights to the file to use"
        )
    return others[0] if others else None


def _read_config(path: Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise EncoderLoadError(f"open_clip config {path} could not be read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise EncoderLoadError(f"open_clip config {path} is not valid JSON: it is not UTF-8 text") from None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise EncoderLoadError(f"open_clip config {path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise EncoderLoadError(f"open_clip config {path} must contain a JSON object; got {type(config).__name__}")
    return config


def _config_for_checkpoint(name: str, model: str, checkpoint: Path) -> tuple[dict, str]:
    """Return the config of a checkpoint given as weights, and where it came from.

    The order is: the checkpoint's folder, the Hugging Face cache (hf-hub ids), open_clip's
    built-in config of ``model``.
    """
    beside = checkpoint.parent / CONFIG_FILE
    if beside.is_file():
        return _read_config(beside), str(beside)
    searched = [f"{beside} (missing)"]

    if model.startswith(HF_HUB_PREFIX):
        repo_id = model[len(HF_HUB_PREFIX):]
        config_path = find_in_hf_cache(repo_id, [CONFIG_FILE])
        if config_path is not None:
            return _read_config(config_path), str(config_path)
        searched.append(f"{_snapshot_description(repo_id)}{CONFIG_FILE} (the Hugging Face cache; missing)")
        hint = (
            f"Put the {CONFIG_FILE} of {repo_id} next to the checkpoint, or into the Hugging Face cache "
            f"{hf_hub_cache_dir()}"
        )
    else:
        import open_clip

        model_cfg = open_clip.get_model_config(model)
        if model_cfg is not None:
            return {"model_cfg": model_cfg}, f"{_BUILT_IN_CONFIG} {model}"
        searched.append(f"open_clip's built-in configs (no architecture {model!r} in open_clip.list_models())")
        hint = f"Put the checkpoint's {CONFIG_FILE} next to it, or set model to the checkpoint's open_clip architecture"

    raise _config_not_found(name, checkpoint, searched, hint=hint)


def _config_not_found(name: str, checkpoint: Path, searched: list[str], *, hint: str) -> WeightsNotFoundError:
    message = (
        f"{CONFIG_FILE} of encoder {name!r} not found for the checkpoint {checkpoint}; looked in: "
        f"{'; '.join(searched)}. {hint}. synthgate never downloads files."
    )
    return WeightsNotFoundError(message, searched)


def _model_config(config: dict, label: str) -> dict[str, Any]:
    """Return the ``model_cfg`` of an open_clip config after checking what this module uses."""
    model_cfg = config.get("model_cfg", config)
    if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get("vision_cfg"), dict):
        raise EncoderLoadError(f"{label} must have a model_cfg with a vision_cfg table")
    embed_dim = model_cfg.get("embed_dim")
    if isinstance(embed_dim, bool) or not isinstance(embed_dim, int) or embed_dim < 1:
        raise EncoderLoadError(f"model_cfg.embed_dim of {label} must be a positive integer; got {embed_dim!r}")
    if "multimodal_cfg" in model_cfg:
        raise EncoderLoadError(f"{label} describes a CoCa model (multimodal_cfg), which is not supported")
    return model_cfg


def _preprocessing(config: dict, model_cfg: dict, label: str) -> Preprocessing:
    image_size = model_cfg["vision_cfg"].get("image_size", _default_image_size())
    try:
        return preprocessing_from_open_clip(config.get("preprocess_cfg", {}), image_size)
    except (TypeError, ValueError) as error:
        raise EncoderLoadError(
            f"{label} is invalid: {error}. Correct its preprocess_cfg or vision_cfg.image_size"
        ) from None


def _remedy(model: str, label: str, *, from_cache: bool) -> str:
    """Return what to do when the checkpoint of an open_clip encoder cannot be used."""
    fit = f"set weights to a checkpoint of the model that the {label} describes"
    if from_cache:
        repo_id = model[len(HF_HUB_PREFIX):]
        return f"download the files of {repo_id} into the Hugging Face cache {hf_hub_cache_dir()} again, or {fit}"
    return f"{fit}, or put the checkpoint's own {CONFIG_FILE} next to it"


def _snapshot_description(repo_id: str) -> str:
    return f"{hf_hub_cache_dir() / ('models--' + repo_id.replace('/', '--'))}/snapshots/<revision of refs/main>/"


def _cache_hint(repo_id: str | None) -> str:
    if repo_id is None:
        return f"put {CONFIG_FILE} and the checkpoint into one folder and pass that folder as weights"
    return (
        f"put the files {CONFIG_FILE} and open_clip_pytorch_model.bin of {repo_id} into the Hugging Face cache "
        f"{hf_hub_cache_dir()} (for example `hf download {repo_id}` on a machine with network access, then copy "
        "the cache folder; HF_HUB_CACHE selects another cache folder)"
    )
