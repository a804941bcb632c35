"""Tests of synthgate.images: decoding every PNG flavour, listing folders, reading groups."""

from __future__ import annotations

import hashlib
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from synthgate import images
from synthgate.errors import DatasetError, ImageDecodeError, SynthgateWarning
from synthgate.images import ImageInfo, decode_image, list_images, read_groups

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def build_png(width: int, height: int, *, rows: bytes | None = None) -> bytes:
    """Return an 8-bit greyscale PNG whose IHDR claims ``width`` x ``height``.

    ``rows`` is the raw filtered scanline data. Without it the IDAT holds a few zero bytes, so
    the header may claim any size without the test allocating it.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(rows if rows is not None else b"\x00" * 16)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")


def _ramp(height=256, width=256):
    return (np.add.outer(np.arange(height), np.arange(width)) % 256).astype(np.uint8)


def _save(image: Image.Image, path):
    image.save(path)
    return path


# Mode handling.


def test_grey_palette_decodes_through_palette(tmp_path):
    indices = _ramp()
    image = Image.fromarray(indices, mode="L").convert("P")
    # Reverse grey: index i shows grey 255 - i, so reading raw indices would give the wrong values.
    image.putpalette([value for i in range(256) for value in (255 - i,) * 3])
    path = _save(image, tmp_path / "palette.png")

    array, info = decode_image(path)

    assert Image.open(path).mode == "P"
    assert np.array_equal(array, 255 - indices)
    assert np.array_equal(array, np.asarray(Image.open(path).convert("L")))
    assert info.mode == "P"
    assert info.conversion == "palette"
    assert info.bit_depth == 8


def test_colour_palette_gives_luminance_and_warning(tmp_path):
    indices = _ramp()
    image = Image.fromarray(indices, mode="L").convert("P")
    image.putpalette([value for i in range(256) for value in (i, 0, 255 - i)])
    path = _save(image, tmp_path / "colour_palette.png")

    with pytest.warns(SynthgateWarning, match="palette image with colour entries.*luminance"):
        array, info = decode_image(path)

    assert np.array_equal(array, np.asarray(Image.open(path).convert("L")))
    assert info.conversion == "luminance"


def test_palette_with_unused_colour_entries_is_grey(tmp_path):
    image = Image.fromarray(np.full((256, 256), 3, dtype=np.uint8), mode="P")
    palette = [value for i in range(256) for value in (i, i, i)]
    palette[0:3] = [255, 0, 0]  # entry 0 is red but no pixel uses it
    image.putpalette(palette)
    path = _save(image, tmp_path / "p.png")

    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthgateWarning)
        array, info = decode_image(path)

    assert info.conversion == "palette"
    assert np.all(array == 3)


def test_sixteen_bit_png_scales_round_x_over_257(tmp_path):
    values = np.array([0, 128, 129, 257, 385, 386, 65535, 32896], dtype=np.uint16)
    expected = np.array([0, 0, 1, 1, 1, 2, 255, 128], dtype=np.uint8)
    stored = np.tile(values, (256, 32))
    path = _save(Image.fromarray(stored), tmp_path / "deep.png")

    array, info = decode_image(path)

    assert Image.open(path).mode == "I;16"
    assert np.array_equal(array[0, :8], expected)
    assert info.bit_depth == 16
    assert info.conversion == "16-bit"


def test_sixteen_bit_big_endian_mode():
    values = np.full((4, 4), 514, dtype=">u2")
    image = Image.frombytes("I;16B", (4, 4), values.tobytes())

    array, conversion, bit_depth, _ = images._to_grey("memory", image)

    assert np.all(array == 2)
    assert conversion == "16-bit"
    assert bit_depth == 16


def test_rgb_with_equal_channels_gives_channel(tmp_path):
    grey = _ramp()
    path = _save(Image.fromarray(np.stack([grey] * 3, axis=-1), mode="RGB"), tmp_path / "rgb.png")

    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthgateWarning)
        array, info = decode_image(path)

    assert np.array_equal(array, grey)
    assert info.conversion == "equal-channels"
    assert info.mode == "RGB"


def test_rgb_colour_gives_luminance_and_warning(tmp_path):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    path = _save(Image.fromarray(colour, mode="RGB"), tmp_path / "colour.png")

    with pytest.warns(SynthgateWarning, match=r"colour image \(mode 'RGB'\).*ITU-R 601-2"):
        array, info = decode_image(path)

    assert np.array_equal(array, np.asarray(Image.open(path).convert("L")))
    assert info.conversion == "luminance"


def test_colour_warning_can_be_turned_off(tmp_path):
    colour = np.zeros((256, 256, 3), dtype=np.uint8)
    colour[..., 0] = 200
    path = _save(Image.fromarray(colour, mode="RGB"), tmp_path / "red.png")

    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthgateWarning)
        _, info = decode_image(path, warn=False)

    assert info.conversion == "luminance"


def test_rgba_and_la_drop_alpha(tmp_path):
    grey = _ramp()
    alpha = np.full_like(grey, 7)
    rgba = _save(Image.fromarray(np.stack([grey, grey, grey, alpha], axis=-1), mode="RGBA"), tmp_path / "rgba.png")
    la = _save(Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA"), tmp_path / "la.png")

    rgba_array, rgba_info = decode_image(rgba)
    la_array, la_info = decode_image(la)

    assert np.array_equal(rgba_array, grey)
    assert rgba_info.conversion == "equal-channels"
    assert np.array_equal(la_array, grey)
    assert la_info.mode == "LA"


def test_bilevel_gives_0_and_255(tmp_path):
    pattern = np.indices((256, 256)).sum(axis=0) % 2 == 0
    path = _save(Image.fromarray(pattern), tmp_path / "bits.png")

    array, info = decode_image(path)

    assert set(np.unique(array)) == {0, 255}
    assert np.array_equal(array == 255, pattern)
    assert info.conversion == "bilevel"
    assert info.bit_depth == 1


def test_unsupported_mode_is_rejected(tmp_path):
    path = _save(Image.fromarray(np.zeros((8, 8), dtype=np.float32), mode="F"), tmp_path / "float.tiff")

    with pytest.raises(ImageDecodeError, match="unsupported image mode 'F'"):
        decode_image(path)


def test_int32_values_outside_16_bit_rejected(tmp_path):
    path = _save(Image.fromarray(np.full((8, 8), -5, dtype=np.int32), mode="I"), tmp_path / "signed.tiff")

    with pytest.raises(ImageDecodeError, match="outside the 16-bit range"):
        decode_image(path)


# Size, hashes and info.


def test_wrong_size_is_resized_and_flagged(tmp_path):
    small = _ramp(128, 100)
    path = _save(Image.fromarray(small), tmp_path / "small.png")
    expected = np.asarray(Image.fromarray(small).resize((256, 256), Image.Resampling.LANCZOS))

    array, info = decode_image(path)

    assert array.shape == (256, 256)
    assert array.dtype == np.uint8
    assert info.resized is True
    assert (info.width, info.height) == (100, 128)
    assert np.array_equal(array, expected)


def test_working_size_is_not_resized(tmp_path):
    path = _save(Image.fromarray(_ramp()), tmp_path / "ok.png")

    array, info = decode_image(path)

    assert info.resized is False
    assert np.array_equal(array, _ramp())


def test_custom_size_is_height_width(tmp_path):
    path = _save(Image.fromarray(_ramp()), tmp_path / "ok.png")

    array, info = decode_image(path, size=(64, 32))

    assert array.shape == (64, 32)
    assert info.resized is True


@pytest.mark.parametrize("size", [(0, 256), (256,), "256", (256.5, 256), None])
def test_invalid_size_rejected(tmp_path, size):
    path = _save(Image.fromarray(_ramp()), tmp_path / "ok.png")

    with pytest.raises(ValueError, match="size must be a \\(height, width\\) pair of positive integers"):
        decode_image(path, size=size)


def test_pixel_hash_and_constant_flag(tmp_path):
    varied = _save(Image.fromarray(_ramp()), tmp_path / "varied.png")
    flat = _save(Image.fromarray(np.full((256, 256), 9, dtype=np.uint8)), tmp_path / "flat.png")

    varied_array, varied_info = decode_image(varied)
    _, flat_info = decode_image(flat)

    assert varied_info.pixel_sha256 == hashlib.sha256(varied_array.tobytes()).hexdigest()
    assert varied_info.is_constant is False
    assert flat_info.is_constant is True


def test_same_pixels_in_other_mode_same_hash(tmp_path):
    grey = _ramp()
    as_l = _save(Image.fromarray(grey), tmp_path / "l.png")
    as_p = _save(Image.fromarray(grey).convert("P"), tmp_path / "p.png")

    assert decode_image(as_l)[1].pixel_sha256 == decode_image(as_p)[1].pixel_sha256


def test_image_info_round_trip():
    info = ImageInfo(256, 256, "P", 8, "palette", False, "ab" * 32, False)

    assert ImageInfo.from_dict(info.to_dict()) == info


def test_image_info_rejects_unknown_fields():
    data = ImageInfo(256, 256, "P", 8, "palette", False, "ab" * 32, False).to_dict()
    data["extra"] = 1

    with pytest.raises(ValueError, match="ImageInfo fields must be"):
        ImageInfo.from_dict(data)


# Errors.


def test_truncated_png_raises(tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, (256, 256), dtype=np.uint8)
    good = _save(Image.fromarray(noise), tmp_path / "g.png")
    data = good.read_bytes()
    half = tmp_path / "half.png"
    half.write_bytes(data[: len(data) // 2])

    with pytest.raises(ImageDecodeError, match="truncated or corrupt") as caught:
        decode_image(half)

    assert caught.value.path == half
    assert "re-export or remove" in caught.value.reason


def test_png_missing_iend_raises(tmp_path):
    good = _save(Image.fromarray(_ramp()), tmp_path / "g.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:-12])

    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(cut)


def test_corrupt_pixel_data_raises(tmp_path):
    rows = b"".join(b"\x00" + bytes(range(16)) for _ in range(16))
    data = bytearray(build_png(16, 16, rows=rows))
    data[45:50] = b"\xff" * 5  # inside the compressed IDAT payload, so the CRC no longer matches
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))

    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(path)


def test_zero_byte_file_raises(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")

    with pytest.raises(ImageDecodeError, match=r"empty file \(0 bytes\)"):
        decode_image(path)


def test_text_file_named_png_raises(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("patient list, not an image\n")

    with pytest.raises(ImageDecodeError, match="not an image file that Pillow can read"):
        decode_image(path)


def test_png_signature_without_header_raises(tmp_path):
    path = tmp_path / "stub.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4)

    with pytest.raises(ImageDecodeError, match="corrupt PNG: no IHDR header"):
        decode_image(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ImageDecodeError, match="cannot read file"):
        decode_image(tmp_path / "absent.png")


def test_decompression_bomb_rejected_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(build_png(100_000, 100_000))
    limit_before = Image.MAX_IMAGE_PIXELS

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageDecodeError, match="100000x100000 = 10000000000 pixels.*decompression bomb"):
            decode_image(path)

    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_pillow_bomb_error_becomes_decode_error(tmp_path, monkeypatch):
    # Lift synthgate's own limit so that Pillow's check is the one that fires.
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 10**12)
    path = tmp_path / "bomb.png"
    path.write_bytes(build_png(100_000, 100_000))
    limit_before = Image.MAX_IMAGE_PIXELS

    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        decode_image(path)

    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_pillow_bomb_warning_becomes_decode_error(tmp_path):
    # A GIF header claiming 10000 x 10000 pixels: above Pillow's warning limit (about 89 MP),
    # below its error limit. synthgate checks non-PNG sizes only after Pillow's open.
    header = b"GIF89a" + struct.pack("<HHBBB", 10_000, 10_000, 0, 0, 0)
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, 10_000, 10_000, 0)
    path = tmp_path / "bomb.gif"
    path.write_bytes(header + descriptor + b"\x02\x02\x44\x01\x00\x3b")
    limit_before = Image.MAX_IMAGE_PIXELS

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageDecodeError, match="decompression bomb"):
            decode_image(path)

    assert Image.MAX_IMAGE_PIXELS == limit_before
    assert not any(f[0] == "error" and f[2] is Image.DecompressionBombWarning for f in warnings.filters)


# list_images.


def test_list_images_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"generated folder does not exist: .*absent \(pattern '\*\*/\*\.png'\); check the path"):
        list_images(tmp_path / "absent", role="generated")


def test_list_images_path_is_file(tmp_path):
    path = tmp_path / "one.png"
    path.write_bytes(b"x")

    with pytest.raises(DatasetError, match="real path is a file, not a folder"):
        list_images(path, role="real")


def test_list_images_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")

    expected = r"no file in the real folder .* matches pattern '\*\*/\*\.png'; check the path"
    with pytest.raises(DatasetError, match=expected):
        list_images(tmp_path, role="real")


def test_list_images_suffix_case_insensitive(tmp_path):
    for name in ("a.png", "b.PNG", "c.Png", "d.txt", "e.png.bak"):
        (tmp_path / name).write_bytes(b"x")

    names = [path.name for path in list_images(tmp_path)]

    assert names == ["a.png", "b.PNG", "c.Png"]


def test_list_images_deterministic_order(tmp_path):
    names = ["p2/z.png", "p10/a.png", "p1/b.png", "top.png", "p1/a.png", "p1/sub/c.png"]
    for name in reversed(names):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()  # a folder whose name matches is skipped

    listed = [path.relative_to(tmp_path).as_posix() for path in list_images(tmp_path)]

    assert listed == sorted(names)


def test_list_images_custom_pattern(tmp_path):
    for name in ("gen_00001.png", "gen_00000.png", "loss_curve.png"):
        (tmp_path / name).write_bytes(b"x")

    names = [path.name for path in list_images(tmp_path, pattern="gen_*.png")]

    assert names == ["gen_00000.png", "gen_00001.png"]


# read_groups.


def _tree(root, names):
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        paths.append(path)
    return paths


def test_groups_none(tmp_path):
    assert read_groups(None, tmp_path, _tree(tmp_path, ["a.png"])) is None


def test_groups_folder(tmp_path):
    paths = _tree(tmp_path, ["p1/a.png", "p2/b.png", "site/p3/c.png"])

    assert read_groups("folder", tmp_path, paths) == ("p1", "p2", "site/p3")


def test_groups_folder_rejects_top_level_file(tmp_path):
    paths = _tree(tmp_path, ["p1/a.png", "loose.png"])

    with pytest.raises(DatasetError, match="1 lie directly in it, e.g. 'loose.png'"):
        read_groups("folder", tmp_path, paths)


def test_groups_csv_with_extra_rows_and_columns(tmp_path):
    paths = _tree(tmp_path / "data", ["x/a.png", "b.png"])
    table = tmp_path / "split.csv"
    table.write_text("file,patient_id,split\nb.png,P2,train\nother/c.png,P9,holdout\n./x/a.png,P1,train\n")

    assert read_groups(table, tmp_path / "data", paths) == ("P1", "P2")


def test_groups_csv_missing_rows(tmp_path):
    paths = _tree(tmp_path / "data", [f"img_{i}.png" for i in range(8)])
    table = tmp_path / "groups.csv"
    table.write_text("file,patient_id\nimg_0.png,P0\n")

    expected = r"groups.csv has no row for 7 of 8 files, e\.g\. 'img_1.png', .*'img_5.png';"
    with pytest.raises(DatasetError, match=expected):
        read_groups(table, tmp_path / "data", paths)


def test_groups_csv_missing_column(tmp_path):
    paths = _tree(tmp_path / "data", ["a.png"])
    table = tmp_path / "groups.csv"
    table.write_text("filename,patient\na.png,P0\n")

    expected = r"must have columns 'file' and 'patient_id'; missing \['file', 'patient_id'\]"
    with pytest.raises(DatasetError, match=expected):
        read_groups(table, tmp_path / "data", paths)


def test_groups_csv_not_found(tmp_path):
    with pytest.raises(DatasetError, match="groups CSV not found"):
        read_groups(tmp_path / "absent.csv", tmp_path, _tree(tmp_path, ["a.png"]))


def test_groups_csv_conflicting_ids(tmp_path):
    paths = _tree(tmp_path / "data", ["a.png"])
    table = tmp_path / "groups.csv"
    table.write_text("file,patient_id\na.png,P0\na.png,P1\n")

    with pytest.raises(DatasetError, match="line 3: file 'a.png' has patient_id 'P1', but an earlier row gives 'P0'"):
        read_groups(table, tmp_path / "data", paths)


def test_groups_csv_empty_id(tmp_path):
    paths = _tree(tmp_path / "data", ["a.png"])
    table = tmp_path / "groups.csv"
    table.write_text("file,patient_id\na.png,\n")

    with pytest.raises(DatasetError, match="line 2: patient_id is empty for file 'a.png'"):
        read_groups(table, tmp_path / "data", paths)


# Real data.


@pytest.mark.realdata
def test_real_palette_pngs_match_pillow(real_data_dir):
    folder = real_data_dir / "ct-generated-dcgan"
    for name in ("gen_00000.png", "gen_00001.png", "gen_01000.png", "gen_01999.png"):
        path = folder / name

        array, info = decode_image(path)

        assert info.mode == "P", name
        assert info.conversion == "palette", name
        assert info.resized is False, name
        assert np.array_equal(array, np.asarray(Image.open(path).convert("L"))), name
