"""Loading ResNeXt-101 and open_clip encoders from local files, folders and library caches.

No real weights are needed. Each test saves a randomly initialised model where the encoder
looks: a file, a folder, torch hub's checkpoints folder, or a Hugging Face cache tree under a
temporary ``HF_HUB_CACHE``. It then loads the model through the encoder and compares the
embeddings with the original model's. Every test runs with socket connections made to fail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from synthgate.encoders import PRESETS, EncoderLoadError, WeightsNotFoundError, get_encoder, preprocess

CLIP_SKIP = "needs the clip extra: pip install 'synthgate[clip]'"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Make every socket connection fail, so a test fails if anything tries the network."""

    def reject_connection(self, address):
        raise AssertionError(f"network access attempted: connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", reject_connection)
    monkeypatch.setattr(socket.socket, "connect_ex", reject_connection)


def _slices(n: int, size: int = 256, seed: int = 0) -> np.ndarray:
    """Bright noisy ellipses on dark air, one per slice, each with its own seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = []
    for _ in range(n):
        body = ((yy - 0.5) / rng.uniform(0.25, 0.4)) ** 2 + ((xx - 0.5) / rng.uniform(0.3, 0.45)) ** 2 <= 1
        image = np.where(body, 200.0, 40.0) + rng.normal(0, 15, (size, size))
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(images)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ResNeXt-101 32x8d.


@pytest.fixture(scope="module")
def resnext(tmp_path_factory):
    """A randomly initialised torchvision resnext101_32x8d and its saved state dict (340 MB)."""
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    import torch
    from torchvision.models import resnext101_32x8d

    torch.manual_seed(0)
    model = resnext101_32x8d(weights=None).eval()
    path = tmp_path_factory.mktemp("resnext") / "resnext101_32x8d-random.pth"
    torch.save(model.state_dict(), path)
    model.fc = torch.nn.Identity()
    return model, path


def test_resnext_loads_local_file(resnext):
    import torch

    model, path = resnext
    encoder = get_encoder("resnext101_32x8d", weights=str(path), batch_size=1, threads=1)
    images = _slices(2)

    embeddings = encoder.transform(images)
    with torch.inference_mode():
        expected = model(preprocess(images, PRESETS["resnext101_32x8d/IMAGENET1K_V2"])).numpy()

    assert embeddings.shape == (2, 2048)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)
    assert encoder.params["weights_sha256"] == _sha256(path)
    assert encoder.provenance["release"] is None
    assert encoder.provenance["weights_path"] == str(path)


def test_resnext_finds_torch_hub_cache(resnext, tmp_path, monkeypatch, caplog):
    _, path = resnext
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    cached = checkpoints / "resnext101_32x8d-110c445d.pth"
    cached.symlink_to(path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    with caplog.at_level(logging.WARNING, logger="synthgate.encoders.resnext"):
        encoder = get_encoder("resnext101_32x8d")

    assert encoder.weights_path == cached
    assert encoder.params["weights_sha256"] == _sha256(path)
    # The random file is named like the V2 release but its hash is not V2's.
    assert "may be truncated or modified" in caplog.text


def test_resnext_release_from_hash_prefix(tmp_path):
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    from synthgate.encoders.resnext import _release_of

    assert _release_of(tmp_path / "any.pth", "8ba56ff5" + "0" * 56) == "IMAGENET1K_V1"
    assert _release_of(tmp_path / "any.pth", "110c445d" + "0" * 56) == "IMAGENET1K_V2"
    assert _release_of(tmp_path / "any.pth", "f" * 64) is None


def test_resnext_missing_weights_lists_hub_cache(tmp_path, monkeypatch):
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"

    with pytest.raises(WeightsNotFoundError) as raised:
        get_encoder("resnext101_32x8d")

    message = str(raised.value)
    assert f"{checkpoints / 'resnext101_32x8d-*.pth'} (the torch hub cache)" in message
    assert "resnext101_32x8d-110c445d.pth (IMAGENET1K_V2)" in message
    assert "resnext101_32x8d-8ba56ff5.pth (IMAGENET1K_V1)" in message
    assert "[encoders.resnext101_32x8d] table of thresholds.toml" in message


def test_resnext_rejects_folder_as_weights(tmp_path, monkeypatch):
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsNotFoundError, match=r"\(the weights parameter; a folder, not a file\)"):
        get_encoder("resnext101_32x8d", weights=tmp_path)


def _resnext_remedy(tmp_path) -> str:
    return (
        "set weights to a state dict of torchvision's resnext101_32x8d saved with torch.save, or remove the weights "
        f"key to use torchvision's file in {tmp_path / 'torch' / 'hub' / 'checkpoints'}"
    )


def _resnext_shaped_state(**replaced) -> dict:
    """A resnext101_32x8d state dict of zero tensors that share one element, so the file stays small."""
    import torch
    from torchvision.models import resnext101_32x8d

    with torch.device("meta"):
        shapes = {key: value.shape for key, value in resnext101_32x8d(weights=None).state_dict().items()}
    zero = torch.zeros(1)
    state = {key: zero.expand(shape) if len(shape) else torch.tensor(0) for key, shape in shapes.items()}
    state.update(replaced)
    return state


def test_resnext_unreadable_weights_rejected(tmp_path, monkeypatch):
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "resnext.pth"
    path.write_text("not a checkpoint\n")

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("resnext101_32x8d", weights=path)

    assert str(raised.value) == f"weights file {path} is not a readable PyTorch checkpoint; {_resnext_remedy(tmp_path)}"
    assert raised.value.__cause__ is None


def test_resnext_resnet18_state_dict_rejected(tmp_path, monkeypatch):
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    import torch
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("resnext101_32x8d", weights=path)

    # resnet18's keys are a subset of ResNeXt-101's: the third convolution of each block is missing.
    assert str(raised.value) == (
        f"weights file {path} does not match torchvision's resnext101_32x8d: 122 of 626 expected keys found "
        f"(first missing key: layer1.0.conv3.weight); {_resnext_remedy(tmp_path)}"
    )


def test_resnext_shape_mismatch_rejected(tmp_path, monkeypatch):
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "two_classes.pth"
    torch.save(_resnext_shaped_state(**{"fc.weight": torch.zeros(2, 2048), "fc.bias": torch.zeros(2)}), path)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("resnext101_32x8d", weights=path)

    assert str(raised.value) == (
        f"weights file {path} does not match torchvision's resnext101_32x8d: 2 of 626 entries have another shape "
        f"(first: fc.weight has shape [2, 2048] in the file but [1000, 2048] in the model); {_resnext_remedy(tmp_path)}"
    )


def test_resnext_cached_file_mismatch_names_releases(tmp_path, monkeypatch):
    pytest.importorskip("torchvision", reason=f"torchvision not installed; {CLIP_SKIP}")
    import torch

    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = checkpoints / "resnext101_32x8d-110c445d.pth"
    torch.save({"a": torch.zeros(1)}, cached)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("resnext101_32x8d")

    assert str(raised.value).endswith(
        "; replace it with torchvision's resnext101_32x8d-110c445d.pth (IMAGENET1K_V2) or torchvision's "
        "resnext101_32x8d-8ba56ff5.pth (IMAGENET1K_V1), or set weights to a state dict of torchvision's "
        "resnext101_32x8d saved with torch.save"
    )
    assert str(raised.value).startswith(f"weights file {cached} does not match torchvision's resnext101_32x8d: 0 of 626")


# open_clip and BiomedCLIP.

TINY_VISION = {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16}
# BiomedCLIP's image tower settings (a timm ViT without pooling, a linear projection) on timm's
# smallest ViT. open_clip builds a timm trunk at its own input size, 224 here.
TINY_TIMM_VISION = {
    "timm_model_name": "vit_tiny_patch16_224",
    "timm_model_pretrained": False,
    "timm_pool": "",
    "timm_proj": "linear",
    "image_size": 224,
}
TINY_TEXT = {"context_length": 16, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1}
# BiomedCLIP's text tower, which the encoder must not build (no transformers, no BERT config).
BIOMEDCLIP_TEXT = {
    "hf_model_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
    "hf_tokenizer_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
    "hf_proj_type": "mlp",
    "hf_pooler_type": "cls_last_hidden_state_pooler",
    "context_length": 256,
}
PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bilinear"}


@pytest.fixture(scope="module")
def tiny_clip():
    """A randomly initialised open_clip CLIP with a 2-layer 64-wide ViT and 32-d embeddings."""
    pytest.importorskip("open_clip", reason=f"open_clip_torch not installed; {CLIP_SKIP}")
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(0)
    return CLIP(embed_dim=32, vision_cfg=TINY_VISION, text_cfg=TINY_TEXT).eval()


@pytest.fixture(scope="module")
def tiny_timm_clip():
    """A randomly initialised open_clip CLIP whose image tower is timm's vit_tiny."""
    pytest.importorskip("open_clip", reason=f"open_clip_torch not installed; {CLIP_SKIP}")
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(1)
    return CLIP(embed_dim=32, vision_cfg=TINY_TIMM_VISION, text_cfg=TINY_TEXT).eval()


def _write_model_folder(folder: Path, model, *, vision_cfg=TINY_VISION, text_cfg=TINY_TEXT,
                        checkpoint="open_clip_pytorch_model.bin") -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": {"embed_dim": 32, "vision_cfg": vision_cfg, "text_cfg": text_cfg}, "preprocess_cfg": PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    torch.save(model.state_dict(), folder / checkpoint)
    return folder


def _expected_embeddings(model, images, recipe):
    import torch

    with torch.inference_mode():
        return model.encode_image(preprocess(images, recipe), normalize=True).numpy()


def test_open_clip_local_folder_matches_encode_image(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "tiny", tiny_clip)
    encoder = get_encoder("tiny_clip", kind="open_clip", model="tiny-vit", weights=folder, threads=1)
    images = _slices(3)

    embeddings = encoder.transform(images)

    assert embeddings.shape == (3, 32)
    np.testing.assert_allclose(embeddings, _expected_embeddings(tiny_clip, images, encoder.preprocessing), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    recipe = encoder.params["preprocessing"]
    assert (recipe["size"], recipe["crop"], recipe["interpolation"]) == (64, 64, "bilinear")
    assert (recipe["mean"], recipe["std"]) == (PREPROCESS["mean"], PREPROCESS["std"])
    assert encoder.params["weights_sha256"] == _sha256(folder / "open_clip_pytorch_model.bin")
    assert encoder.provenance["config"] == str(folder / "open_clip_config.json")
    assert encoder.provenance["kind"] == "open_clip"
    assert encoder.provenance["embedding_dimension"] == 32


def test_open_clip_checkpoint_file_uses_config_beside_it(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "tiny", tiny_clip)
    from_folder = get_encoder("tiny_clip", kind="open_clip", model="tiny-vit", weights=folder)
    from_file = get_encoder("tiny_clip", kind="open_clip", model="tiny-vit", weights=folder / "open_clip_pytorch_model.bin")

    assert from_file.params == from_folder.params


def test_open_clip_reads_safetensors(tiny_clip, tmp_path):
    from safetensors.torch import save_file

    folder = _write_model_folder(tmp_path / "tiny", tiny_clip)
    (folder / "open_clip_pytorch_model.bin").unlink()
    save_file({key: value.contiguous() for key, value in tiny_clip.state_dict().items()}, folder / "open_clip_model.safetensors")
    encoder = get_encoder("tiny_clip", kind="open_clip", model="tiny-vit", weights=folder)
    images = _slices(2, seed=1)

    assert encoder.weights_path.name == "open_clip_model.safetensors"
    np.testing.assert_allclose(
        encoder.transform(images), _expected_embeddings(tiny_clip, images, encoder.preprocessing), atol=1e-5
    )


def test_open_clip_built_in_architecture_gets_default_preprocessing(tiny_clip, tmp_path, monkeypatch):
    import open_clip.factory

    monkeypatch.setitem(
        open_clip.factory._MODEL_CONFIGS, "synthgate-test-tiny",
        {"embed_dim": 32, "vision_cfg": TINY_VISION, "text_cfg": TINY_TEXT},
    )
    folder = _write_model_folder(tmp_path / "bare", tiny_clip)
    (folder / "open_clip_config.json").unlink()

    encoder = get_encoder("tiny_clip", kind="open_clip", model="synthgate-test-tiny", weights=folder / "open_clip_pytorch_model.bin")
    images = _slices(1)

    assert encoder.provenance["config"] == "open_clip built-in config synthgate-test-tiny"
    assert encoder.preprocessing.interpolation == "bicubic"
    assert encoder.preprocessing.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    np.testing.assert_allclose(
        encoder.transform(images), _expected_embeddings(tiny_clip, images, encoder.preprocessing), atol=1e-5
    )


def _fake_hf_cache(root: Path, repo_id: str, model, *, vision_cfg=TINY_VISION, text_cfg) -> Path:
    """Lay out one model the way huggingface_hub caches it: refs/main names the snapshot."""
    repository = root / ("models--" + repo_id.replace("/", "--"))
    (repository / "refs").mkdir(parents=True)
    (repository / "refs" / "main").write_text("0123456789abcdef")
    return _write_model_folder(
        repository / "snapshots" / "0123456789abcdef", model, vision_cfg=vision_cfg, text_cfg=text_cfg
    )


def test_biomedclip_loads_from_hf_cache_without_text_tower(tiny_timm_clip, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    snapshot = _fake_hf_cache(
        tmp_path / "hub", "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", tiny_timm_clip,
        vision_cfg=TINY_TIMM_VISION, text_cfg=BIOMEDCLIP_TEXT,
    )
    # Keep the image tower's weights and add a stand-in for the BERT text tower's.
    state = {key: value for key, value in tiny_timm_clip.state_dict().items() if key.startswith("visual.")}
    state["text.transformer.embeddings.word_embeddings.weight"] = torch.zeros(4, 4)
    torch.save(state, snapshot / "open_clip_pytorch_model.bin")

    encoder = get_encoder("biomedclip", threads=1)
    images = _slices(2, seed=2)

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert encoder.model_id == "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    assert encoder.weights_path == snapshot / "open_clip_pytorch_model.bin"
    assert encoder.provenance["config"] == str(snapshot / "open_clip_config.json")
    assert encoder.provenance["kind"] == "biomedclip"
    np.testing.assert_allclose(
        encoder.transform(images), _expected_embeddings(tiny_timm_clip, images, encoder.preprocessing), atol=1e-5
    )


def test_open_clip_hub_id_loads_from_hf_cache(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = _fake_hf_cache(tmp_path / "hub", "someone/tiny-clip", tiny_clip, text_cfg=TINY_TEXT)

    encoder = get_encoder("tiny_hub", kind="open_clip", model="hf-hub:someone/tiny-clip")

    assert encoder.weights_path == snapshot / "open_clip_pytorch_model.bin"
    assert encoder.transform(_slices(1)).shape == (1, 32)


def test_biomedclip_missing_lists_hf_cache(tmp_path, monkeypatch):
    pytest.importorskip("open_clip", reason=f"open_clip_torch not installed; {CLIP_SKIP}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))

    with pytest.raises(WeightsNotFoundError) as raised:
        get_encoder("biomedclip")

    message = str(raised.value)
    snapshot = tmp_path / "hub" / "models--microsoft--BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    assert f"{snapshot}/snapshots/<revision of refs/main>/ (the Hugging Face cache;" in message
    assert "open_clip_config.json and a checkpoint missing" in message
    assert "open_clip_pytorch_model.bin" in message
    assert "[encoders.biomedclip] table of thresholds.toml" in message
    assert "hf download microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224" in message


def test_open_clip_architecture_without_weights_is_rejected():
    pytest.importorskip("open_clip", reason=f"open_clip_torch not installed; {CLIP_SKIP}")
    with pytest.raises(WeightsNotFoundError, match="open_clip model 'ViT-B-16' is not a hub id"):
        get_encoder("my_clip", kind="open_clip", model="ViT-B-16")


def test_open_clip_checkpoint_without_config_is_rejected(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "bare", tiny_clip)
    (folder / "open_clip_config.json").unlink()
    checkpoint = folder / "open_clip_pytorch_model.bin"

    with pytest.raises(WeightsNotFoundError) as raised:
        get_encoder("my_clip", kind="open_clip", model="my-own-vit", weights=checkpoint)

    assert str(raised.value) == (
        f"open_clip_config.json of encoder 'my_clip' not found for the checkpoint {checkpoint}; looked in: "
        f"{folder / 'open_clip_config.json'} (missing); open_clip's built-in configs (no architecture 'my-own-vit' in "
        "open_clip.list_models()). Put the checkpoint's open_clip_config.json next to it, or set model to "
        "the checkpoint's open_clip architecture. synthgate never downloads files."
    )
    assert raised.value.searched[0] == f"{folder / 'open_clip_config.json'} (missing)"


def test_open_clip_text_only_checkpoint_fails(tiny_clip, tmp_path):
    import torch

    folder = _write_model_folder(tmp_path / "text_only", tiny_clip)
    torch.save({"text_projection": torch.zeros(32, 32)}, folder / "open_clip_pytorch_model.bin")

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder)

    assert str(raised.value) == (
        f"weights file {folder / 'open_clip_pytorch_model.bin'} has no image tower weights (keys starting with "
        f"'visual.'); its first keys are ['text_projection']; {_open_clip_remedy(folder)}"
    )


def test_open_clip_folder_with_two_checkpoints_is_rejected(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "two", tiny_clip, checkpoint="a.pt")
    (folder / "b.pt").write_bytes((folder / "a.pt").read_bytes())

    with pytest.raises(EncoderLoadError, match=r"contains several checkpoints \(a.pt, b.pt\); set weights to the file to use$"):
        get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder)


def _open_clip_remedy(folder: Path) -> str:
    return (
        f"set weights to a checkpoint of the model that the open_clip config {folder / 'open_clip_config.json'} "
        "describes, or put the checkpoint's own open_clip_config.json next to it"
    )


@pytest.mark.parametrize(
    ("checkpoint", "content", "reading"),
    [
        ("open_clip_pytorch_model.bin", np.random.default_rng(0).bytes(5000), "PyTorch checkpoint"),
        ("open_clip_pytorch_model.bin", b"hello world\n" * 10, "PyTorch checkpoint"),
        ("open_clip_model.safetensors", np.random.default_rng(0).bytes(5000), "safetensors file"),
    ],
    ids=["random_bytes", "text", "random_safetensors"],
)
def test_open_clip_unreadable_checkpoint_rejected(tiny_clip, tmp_path, checkpoint, content, reading):
    folder = _write_model_folder(tmp_path / "broken", tiny_clip, checkpoint=checkpoint)
    (folder / checkpoint).write_bytes(content)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder)

    assert str(raised.value) == f"weights file {folder / checkpoint} is not a readable {reading}; {_open_clip_remedy(folder)}"
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def _tiny_clip_architecture(folder: Path) -> str:
    return f"the image tower of tiny-vit that the open_clip config {folder / 'open_clip_config.json'} describes"


@pytest.mark.parametrize("checkpoint", ["open_clip_pytorch_model.bin", "open_clip_model.safetensors"])
def test_open_clip_config_of_another_model_rejected(tiny_clip, tmp_path, checkpoint):
    from safetensors.torch import save_file

    folder = _write_model_folder(tmp_path / "wider", tiny_clip, vision_cfg={**TINY_VISION, "layers": 3})
    if checkpoint.endswith(".safetensors"):
        (folder / "open_clip_pytorch_model.bin").unlink()
        save_file({key: value.contiguous() for key, value in tiny_clip.state_dict().items()}, folder / checkpoint)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder)

    assert str(raised.value) == (
        f"weights file {folder / checkpoint} does not match {_tiny_clip_architecture(folder)}: 32 of 44 expected "
        f"keys found (first missing key: transformer.resblocks.2.ln_1.weight); {_open_clip_remedy(folder)}"
    )


def test_open_clip_embedding_width_mismatch_rejected(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "narrow", tiny_clip)
    config = json.loads((folder / "open_clip_config.json").read_text())
    config["model_cfg"]["embed_dim"] = 16
    (folder / "open_clip_config.json").write_text(json.dumps(config))

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder)

    assert str(raised.value) == (
        f"weights file {folder / 'open_clip_pytorch_model.bin'} does not match {_tiny_clip_architecture(folder)}: "
        f"1 of 32 entries have another shape (first: proj has shape [64, 32] in the file but [64, 16] in the "
        f"model); {_open_clip_remedy(folder)}"
    )


def test_open_clip_broken_checkpoint_fails_load(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "tiny", tiny_clip)
    encoder = get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder, threads=1)
    (folder / "open_clip_pytorch_model.bin").write_text("overwritten after the encoder was built")

    with pytest.raises(EncoderLoadError, match="open_clip_pytorch_model.bin is not a readable PyTorch checkpoint; "):
        encoder.transform(_slices(1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vision_cfg": {**TINY_VISION, "layers": "two"}},
         r"^open_clip config .*open_clip_config.json is invalid: open_clip cannot build its image tower "
         r"\(TypeError: .*\)\. Correct its vision_cfg$"),
        ({"vision_cfg": {**TINY_TIMM_VISION, "timm_model_name": "no_such_timm_model"}},
         r"is invalid: open_clip cannot build its image tower \(RuntimeError: Unknown model \(no_such_timm_model\)\)"),
        ({"vision_cfg": {**TINY_VISION, "image_size": [64, 32]}},
         r"is invalid: image_size of the open_clip vision tower must be square; got \[64, 32\]\. Correct its "
         r"preprocess_cfg or vision_cfg.image_size$"),
        ({"embed_dim": "32"}, r"model_cfg.embed_dim of open_clip config .* must be a positive integer; got '32'$"),
    ],
    ids=["layers_type", "unknown_timm_model", "non_square", "embed_dim_type"],
)
def test_open_clip_invalid_config_rejected(tiny_clip, tmp_path, change, message):
    folder = _write_model_folder(tmp_path / "tiny", tiny_clip)
    config = json.loads((folder / "open_clip_config.json").read_text())
    config["model_cfg"].update(change)
    (folder / "open_clip_config.json").write_text(json.dumps(config))

    with pytest.raises(EncoderLoadError, match=message):
        get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder)


def test_open_clip_config_not_json_rejected(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "tiny", tiny_clip)
    (folder / "open_clip_config.json").write_text("{model_cfg: ")

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("my_clip", kind="open_clip", model="tiny-vit", weights=folder)

    assert str(raised.value) == (
        f"open_clip config {folder / 'open_clip_config.json'} is not valid JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)"
    )
    assert raised.value.__cause__ is None


def test_open_clip_coca_config_is_rejected(tiny_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "coca", tiny_clip)
    config = json.loads((folder / "open_clip_config.json").read_text())
    config["model_cfg"]["multimodal_cfg"] = {"width": 32}
    (folder / "open_clip_config.json").write_text(json.dumps(config))

    with pytest.raises(ValueError, match=r"describes a CoCa model \(multimodal_cfg\), which is not supported"):
        get_encoder("my_clip", kind="open_clip", model="tiny-coca", weights=folder)


def test_open_clip_timm_tower_size_mismatch_is_reported(tiny_timm_clip, tmp_path):
    folder = _write_model_folder(tmp_path / "timm", tiny_timm_clip, vision_cfg={**TINY_TIMM_VISION, "image_size": 64})

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("my_clip", kind="open_clip", model="tiny-timm", weights=folder)

    assert str(raised.value) == (
        f"open_clip config {folder / 'open_clip_config.json'} is invalid: its image tower takes 224 x 224 pixels "
        "but its preprocessing crops 64; set image_size in its vision_cfg to the tower's input size"
    )


def test_biomedclip_checkpoint_without_config_lists_places(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = _write_model_folder(tmp_path / "bare", tiny_clip)
    (folder / "open_clip_config.json").unlink()

    with pytest.raises(WeightsNotFoundError) as raised:
        get_encoder("biomedclip", weights=folder / "open_clip_pytorch_model.bin")

    message = str(raised.value)
    checkpoint = folder / "open_clip_pytorch_model.bin"
    assert message.startswith(f"open_clip_config.json of encoder 'biomedclip' not found for the checkpoint {checkpoint}; ")
    assert f"looked in: {folder / 'open_clip_config.json'} (missing); " in message
    assert "snapshots/<revision of refs/main>/open_clip_config.json (the Hugging Face cache; missing)" in message
    assert message.endswith(
        "Put the open_clip_config.json of microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 next to the "
        f"checkpoint, or into the Hugging Face cache {tmp_path / 'hub'}. synthgate never downloads files."
    )
    assert "weights of encoder" not in message


def test_hf_cache_checkpoint_without_config_names_config(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = _fake_hf_cache(tmp_path / "hub", "someone/tiny-clip", tiny_clip, text_cfg=TINY_TEXT)
    (snapshot / "open_clip_config.json").unlink()

    with pytest.raises(WeightsNotFoundError) as raised:
        get_encoder("tiny_hub", kind="open_clip", model="hf-hub:someone/tiny-clip")

    assert str(raised.value) == (
        f"open_clip_config.json of encoder 'tiny_hub' not found for the checkpoint "
        f"{snapshot / 'open_clip_pytorch_model.bin'}; looked in: {snapshot / 'open_clip_config.json'} (the Hugging "
        "Face cache; missing). Put the open_clip_config.json of someone/tiny-clip into that snapshot folder, next to "
        "the checkpoint. synthgate never downloads files."
    )


def test_hf_cache_checkpoint_of_another_model_names_cache(tiny_clip, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = _fake_hf_cache(tmp_path / "hub", "someone/tiny-clip", tiny_clip, text_cfg=TINY_TEXT)
    torch.save({"visual.conv1.weight": torch.zeros(1)}, snapshot / "open_clip_pytorch_model.bin")

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("tiny_hub", kind="open_clip", model="hf-hub:someone/tiny-clip")

    assert str(raised.value).endswith(
        f"; download the files of someone/tiny-clip into the Hugging Face cache {tmp_path / 'hub'} again, or set "
        f"weights to a checkpoint of the model that the open_clip config {snapshot / 'open_clip_config.json'} describes"
    )
