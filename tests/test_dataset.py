"""Tests of synthgate.dataset: load_image_set, failures, the decode cache and on-demand decoding."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgate import images
from synthgate.cache import FeatureCache
from synthgate.dataset import ImageSet, LoadFailure, load_image_set
from synthgate.errors import DatasetError, SynthgateWarning


def _image(seed: int, height: int = 256, width: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width), dtype=np.uint8)


def _write(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    image.save(path)
    return path


def _good_folder(root: Path, n: int = 4) -> list[np.ndarray]:
    arrays = [_image(seed) for seed in range(n)]
    for index, array in enumerate(arrays):
        _write(root / f"p{index % 2}" / f"img_{index}.png", array)
    return arrays


def _quiet_load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthgateWarning)
        return load_image_set(*args, **kwargs)


def test_loads_files_in_order(tmp_path):
    arrays = _good_folder(tmp_path)

    image_set = load_image_set(tmp_path, role="real")

    assert len(image_set) == 4
    assert image_set.relative_paths() == ("p0/img_0.png", "p0/img_2.png", "p1/img_1.png", "p1/img_3.png")
    assert image_set.failures == ()
    assert image_set.groups is None
    assert image_set.size == (256, 256)
    assert np.array_equal(image_set.images([0])[0], arrays[0])
    assert np.array_equal(image_set.images([2])[0], arrays[1])


def test_file_hashes_are_sha256_of_bytes(tmp_path):
    _good_folder(tmp_path)

    image_set = load_image_set(tmp_path, role="real")

    expected = tuple(hashlib.sha256(path.read_bytes()).hexdigest() for path in image_set.paths)
    assert image_set.file_sha256 == expected


def test_failures_collected_and_named(tmp_path):
    _good_folder(tmp_path, n=2)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image")
    good_bytes = (tmp_path / "p0" / "img_0.png").read_bytes()
    (tmp_path / "half.png").write_bytes(good_bytes[: len(good_bytes) // 2])

    with pytest.warns(SynthgateWarning, match="real: 3 of 5 files excluded"):
        image_set = load_image_set(tmp_path, role="real")

    reasons = {failure.path.name: failure.reason for failure in image_set.failures}
    assert len(image_set) == 2
    assert sorted(reasons) == ["empty.png", "half.png", "notes.png"]
    assert reasons["empty.png"].startswith("empty file (0 bytes)")
    assert "not an image file" in reasons["notes.png"]
    assert "truncated or corrupt" in reasons["half.png"]
    assert all(isinstance(failure, LoadFailure) for failure in image_set.failures)


def test_constant_images_excluded(tmp_path):
    _good_folder(tmp_path, n=2)
    _write(tmp_path / "black.png", np.zeros((256, 256), dtype=np.uint8))
    _write(tmp_path / "grey.png", np.full((256, 256), 128, dtype=np.uint8), mode="P")

    with pytest.warns(SynthgateWarning, match="2 of 4 files excluded"):
        image_set = load_image_set(tmp_path, role="generated")

    reasons = {failure.path.name: failure.reason for failure in image_set.failures}
    assert reasons["black.png"] == "constant image: every pixel is 0"
    assert reasons["grey.png"] == "constant image: every pixel is 128"
    assert len(reasons) == 2
    assert all(path.name not in reasons for path in image_set.paths)


def test_unreadable_file_is_failure(tmp_path, monkeypatch):
    _good_folder(tmp_path, n=2)
    locked = _write(tmp_path / "locked.png", _image(9))
    original = Path.read_bytes

    def read_bytes(path):
        if path == locked:
            raise PermissionError(13, "Permission denied")
        return original(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)

    image_set = _quiet_load(tmp_path, role="real")

    assert [failure.path for failure in image_set.failures] == [locked]
    assert image_set.failures[0].reason.startswith("cannot read file (Permission denied)")


def test_no_loadable_image_raises(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    _write(tmp_path / "b.png", np.zeros((256, 256), dtype=np.uint8))

    expected = r"no loadable image in the real folder .*all 2 files matching '\*\*/\*\.png' failed: a.png: empty file"
    with pytest.raises(DatasetError, match=expected):
        _quiet_load(tmp_path, role="real")


def test_empty_folder_raises(tmp_path):
    with pytest.raises(DatasetError, match="no file in the holdout folder"):
        load_image_set(tmp_path, role="holdout")


def test_invalid_arguments_rejected(tmp_path):
    _good_folder(tmp_path, n=1)

    with pytest.raises(ValueError, match="role must be a non-empty string"):
        load_image_set(tmp_path, role="")
    with pytest.raises(ValueError, match="size must be a \\(height, width\\) pair"):
        load_image_set(tmp_path, role="real", size=(0, 0))
    with pytest.raises(TypeError, match="cache must be a FeatureCache or None; got str"):
        load_image_set(tmp_path, role="real", cache=str(tmp_path))
    with pytest.raises(ValueError, match="threads must be a positive integer or None"):
        load_image_set(tmp_path, role="real", threads=0)


# Conversions and resizing are reported once per set.


def test_resized_images_flagged_and_warned(tmp_path):
    _good_folder(tmp_path, n=2)
    _write(tmp_path / "small.png", _image(5, 128, 96))

    with pytest.warns(SynthgateWarning, match=r"1 of 3 images were not 256x256 .*resized with Lanczos; found 96x128"):
        image_set = load_image_set(tmp_path, role="generated")

    flags = dict(zip(image_set.relative_paths(), (info.resized for info in image_set.infos)))
    assert flags == {"p0/img_0.png": False, "p1/img_1.png": False, "small.png": True}
    assert image_set.images().shape == (3, 256, 256)


def test_colour_images_warned_once(tmp_path):
    for index in range(3):
        colour = np.random.default_rng(index).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
        _write(tmp_path / f"c{index}.png", colour)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image_set = load_image_set(tmp_path, role="generated")

    messages = [str(warning.message) for warning in caught if issubclass(warning.category, SynthgateWarning)]
    assert messages == ["generated: 3 of 3 images are colour and were converted to grey with ITU-R 601-2 "
                        "luminance; CT slices should be single-channel, so check how the images were exported"]
    assert {info.conversion for info in image_set.infos} == {"luminance"}


def test_conversions_logged(tmp_path, caplog):
    _write(tmp_path / "a.png", _image(1), mode="P")
    _write(tmp_path / "b.png", _image(2))

    with caplog.at_level(logging.INFO, logger="synthgate.dataset"):
        load_image_set(tmp_path, role="real")

    assert "real: 2 of 2 files" in caplog.text
    assert "converted {'palette': 1}" in caplog.text


# Decode cache.


def test_warm_run_decodes_nothing(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _good_folder(data)
    (data / "empty.png").write_bytes(b"")
    _write(data / "flat.png", np.zeros((256, 256), dtype=np.uint8))
    cache = FeatureCache(tmp_path / "cache")
    cold = _quiet_load(data, role="real", cache=cache)

    def fail(*args, **kwargs):
        raise AssertionError("decode_image was called on a warm run")

    monkeypatch.setattr(images, "decode_image", fail)
    warm = _quiet_load(data, role="real", cache=cache)

    assert warm.paths == cold.paths
    assert warm.file_sha256 == cold.file_sha256
    assert warm.infos == cold.infos
    assert warm.failures == cold.failures


def test_changed_file_is_decoded_again(tmp_path):
    data = tmp_path / "data"
    _good_folder(data)
    cache = FeatureCache(tmp_path / "cache")
    cold = load_image_set(data, role="real", cache=cache)
    _write(data / "p0" / "img_0.png", _image(42))

    warm = load_image_set(data, role="real", cache=cache)

    assert warm.file_sha256[0] != cold.file_sha256[0]
    assert warm.infos[0].pixel_sha256 == hashlib.sha256(_image(42).tobytes()).hexdigest()
    assert warm.infos[1:] == cold.infos[1:]


def test_other_size_uses_other_cache_namespace(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _good_folder(data, n=1)
    cache = FeatureCache(tmp_path / "cache")
    load_image_set(data, role="real", cache=cache)
    namespaces_before = {path.name for path in (tmp_path / "cache").iterdir()}

    with pytest.warns(SynthgateWarning, match="resized"):
        small = load_image_set(data, role="real", cache=cache, size=(64, 64))

    namespaces_after = {path.name for path in (tmp_path / "cache").iterdir()}
    assert small.infos[0].resized is True
    assert len(namespaces_after - namespaces_before) == 1


def test_invalid_cache_record_is_decoded_again(tmp_path, caplog):
    data = tmp_path / "data"
    _good_folder(data, n=1)
    cache = FeatureCache(tmp_path / "cache")
    cold = load_image_set(data, role="real", cache=cache)
    for record_path in (tmp_path / "cache").rglob("*.json"):
        record_path.write_text('{"status": "ok", "info": {"width": 1}}')

    with caplog.at_level(logging.WARNING, logger="synthgate.dataset"):
        warm = load_image_set(data, role="real", cache=cache)

    assert "ignoring invalid decode record" in caplog.text
    assert warm.infos == cold.infos


def test_threads_do_not_change_result(tmp_path):
    _good_folder(tmp_path, n=6)

    serial = load_image_set(tmp_path, role="real", threads=1)
    threaded = load_image_set(tmp_path, role="real", threads=3)

    assert serial == threaded


# Groups.


def test_groups_from_folders(tmp_path):
    _good_folder(tmp_path)

    image_set = load_image_set(tmp_path, role="real", groups="folder")

    assert image_set.groups == ("p0", "p0", "p1", "p1")


def test_groups_from_csv_skip_failures(tmp_path):
    _good_folder(tmp_path, n=2)
    (tmp_path / "broken.png").write_bytes(b"")
    table = tmp_path.parent / f"{tmp_path.name}_groups.csv"
    table.write_text("file,patient_id\np0/img_0.png,A\np1/img_1.png,B\n")

    image_set = _quiet_load(tmp_path, role="real", groups=table)

    assert image_set.groups == ("A", "B")


def test_groups_csv_missing_row_raises(tmp_path):
    _good_folder(tmp_path, n=2)
    table = tmp_path.parent / f"{tmp_path.name}_groups.csv"
    table.write_text("file,patient_id\np0/img_0.png,A\n")

    with pytest.raises(DatasetError, match="has no row for 1 of 2 files, e.g. 'p1/img_1.png'"):
        load_image_set(tmp_path, role="real", groups=table)


# On-demand decoding.


def test_images_and_batches(tmp_path):
    _good_folder(tmp_path, n=5)
    image_set = load_image_set(tmp_path, role="real")
    everything = image_set.images()

    batches = list(image_set.iter_batches(batch_size=2))

    assert everything.shape == (5, 256, 256)
    assert everything.dtype == np.uint8
    assert [indices.tolist() for indices, _ in batches] == [[0, 1], [2, 3], [4]]
    assert np.array_equal(np.concatenate([batch for _, batch in batches]), everything)
    assert np.array_equal(image_set.images([4, 0]), everything[[4, 0]])
    assert image_set.images([]).shape == (0, 256, 256)


def test_images_pixel_hashes_match_infos(tmp_path):
    _good_folder(tmp_path, n=3)
    image_set = load_image_set(tmp_path, role="real")

    stack = image_set.images()

    hashes = tuple(hashlib.sha256(image.tobytes()).hexdigest() for image in stack)
    assert hashes == tuple(info.pixel_sha256 for info in image_set.infos)


@pytest.mark.parametrize(("indices", "message"), [([5], r"indices must lie in 0\.\.1"), ([-1], "indices must lie in"),
                                                  ([0.5], "1-D sequence of integers"), ([[0]], "1-D sequence")])
def test_images_rejects_bad_indices(tmp_path, indices, message):
    _good_folder(tmp_path, n=2)
    image_set = load_image_set(tmp_path, role="real")

    with pytest.raises(ValueError, match=message):
        image_set.images(indices)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_iter_batches_rejects_bad_size(tmp_path, batch_size):
    _good_folder(tmp_path, n=2)
    image_set = load_image_set(tmp_path, role="real")

    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(image_set.iter_batches(batch_size=batch_size))


def test_changed_file_after_load_raises(tmp_path):
    _good_folder(tmp_path, n=2)
    image_set = load_image_set(tmp_path, role="generated")
    _write(image_set.paths[1], _image(77))

    with pytest.raises(DatasetError, match=r"generated image .*img_1.png changed after the image set was loaded"):
        image_set.images()


def test_image_set_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match=r"file_sha256 must have one entry per path \(1\); got 0"):
        ImageSet(role="real", root=tmp_path, paths=(tmp_path / "a.png",), file_sha256=(), infos=(), groups=None,
                 failures=())


# Real data.


@pytest.mark.realdata
def test_real_dcgan_palette_set(real_data_dir, tmp_path):
    folder = real_data_dir / "ct-generated-dcgan"

    image_set = load_image_set(folder, role="generated", pattern="gen_*.png", cache=FeatureCache(tmp_path))

    assert len(image_set) == 2000
    assert image_set.failures == ()
    assert {info.mode for info in image_set.infos} == {"P"}
    assert {info.conversion for info in image_set.infos} == {"palette"}
    chosen = [0, 1, 777, 1999]
    for index, image in zip(chosen, image_set.images(chosen)):
        expected = np.asarray(Image.open(image_set.paths[index]).convert("L"))
        assert np.array_equal(image, expected), image_set.paths[index].name


@pytest.mark.realdata
def test_real_split_csv_matches_folders(real_data_dir):
    folder = real_data_dir / "ct-real"

    by_folder = load_image_set(folder, role="real", groups="folder")
    by_csv = images.read_groups(folder / "split.csv", folder, by_folder.paths)

    assert len(by_folder) == 814
    assert by_csv == by_folder.groups
