"""Tests of the planted-defect generators in fixtures/planted.py, on synthetic phantoms."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # NOTE: fixtures/ is not an installed package, so the repository root must be importable.
    sys.path.insert(0, str(REPO_ROOT))

from fixtures.planted import (  # noqa: E402
    ALTERATIONS,
    PlantedSet,
    apply_alteration,
    make_blurred,
    make_collapsed,
    plant_copies,
    read_grey,
    write_png,
)

CORPUS = REPO_ROOT / ".." / "shared" / "data"


def _phantom(rng):
    """A chest-like 256x256 phantom: grey background, light body, two dark lungs, random texture.

    Values stay within 40-245, so noise and contrast changes of a few grey levels never clip.
    """
    y, x = np.mgrid[0:256, 0:256]
    image = np.full((256, 256), 55.0)
    body = ((y - 128) / 95.0) ** 2 + ((x - 128) / 115.0) ** 2 <= 1
    image[body] = 225.0
    for centre_x in (80, 176):
        lung = ((y - 125) / 60.0) ** 2 + ((x - centre_x) / 35.0) ** 2 <= 1
        image[lung] = 85.0
    texture = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (256, 256)), 6.0)
    image += 15.0 * texture / texture.std()
    blob_y, blob_x = rng.integers(60, 196, size=2)
    image[(y - blob_y) ** 2 + (x - blob_x) ** 2 <= 100] = 200.0
    return np.clip(np.rint(image), 40, 245).astype(np.uint8)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """Eight source phantoms (mode L) and six base phantoms (mode P) on disk, shared read-only."""
    folder = tmp_path_factory.mktemp("phantoms")
    rng = np.random.default_rng(123)
    sources = []
    for index in range(8):
        sources.append(write_png(_phantom(rng), folder / f"source_{index}.png"))
    bases = []
    for index in range(6):
        bases.append(write_png(_phantom(rng), folder / f"base_{index}.png", mode="P"))
    return sources, bases


def _png_names(folder):
    return sorted(path.name for path in Path(folder).glob("*.png"))


def test_write_png_grey_roundtrip(tmp_path):
    array = np.arange(256 * 256, dtype=np.uint32).reshape(256, 256).astype(np.uint8)
    path = write_png(array, tmp_path / "grey.png")

    with Image.open(path) as image:
        assert image.mode == "L"
        assert np.array_equal(np.asarray(image), array)


def test_write_png_palette_decodes_to_grey(tmp_path):
    array = np.arange(256 * 256, dtype=np.uint32).reshape(256, 256).astype(np.uint8)
    path = write_png(array, tmp_path / "palette.png", mode="P")

    with Image.open(path) as image:
        assert image.mode == "P"
        assert np.array_equal(np.asarray(image.convert("L")), array)
        assert np.array_equal(np.asarray(image.convert("RGB"))[..., 0], array)
    assert np.array_equal(read_grey(path), array)


def test_write_png_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="array must be a 2-D uint8 array"):
        write_png(np.zeros((256, 256)), tmp_path / "float.png")
    with pytest.raises(ValueError, match="array must be a 2-D uint8 array"):
        write_png(np.zeros((256, 256, 3), np.uint8), tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"mode must be one of \('L', 'P'\); got 'RGB'"):
        write_png(np.zeros((256, 256), np.uint8), tmp_path / "x.png", mode="RGB")


def test_read_grey_rejects_wrong_size(tmp_path):
    path = write_png(np.zeros((128, 256), np.uint8), tmp_path / "small.png")

    with pytest.raises(ValueError, match="source image must be a 256x256 PNG of mode L or P"):
        read_grey(path)


def test_plant_copies_counts_and_names(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=3)

    assert isinstance(result, PlantedSet)
    assert len(result) == 3
    assert len(result.base) == len(bases)
    assert _png_names(tmp_path / "out") == [f"gen_{number:05d}.png" for number in range(9)]
    assert result.files == tuple(_png_names(tmp_path / "out"))
    assert len(set(result.values())) == 3
    assert set(result.values()) <= set(sources)


def test_plant_copies_hides_copies_in_numbering(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=3, seed=0)

    copy_numbers = {int(name[4:9]) for name in result}
    assert copy_numbers != {6, 7, 8}


def test_plant_copies_exact_without_alter(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=4, mode="P")

    for name, source in result.items():
        with Image.open(tmp_path / "out" / name) as image:
            assert image.mode == "P"
        assert np.array_equal(read_grey(tmp_path / "out" / name), read_grey(source))
    for name, base in result.base.items():
        assert np.array_equal(read_grey(tmp_path / "out" / name), read_grey(base))
    assert dict(result.alterations) == {}


def test_plant_copies_is_deterministic(phantoms, tmp_path):
    sources, bases = phantoms
    first = plant_copies(sources, bases, tmp_path / "a", n_copies=3, alter="noise", seed=7)
    second = plant_copies(sources, bases, tmp_path / "b", n_copies=3, alter="noise", seed=7)
    other = plant_copies(sources, bases, tmp_path / "c", n_copies=3, alter="noise", seed=8)

    assert dict(first) == dict(second)
    assert dict(first.base) == dict(second.base)
    for name in first.files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert dict(first) != dict(other)


@pytest.mark.parametrize("alter", ["shift", "noise", "contrast", "crop_resize"])
def test_plant_copies_alteration_is_light(alter, phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=4, alter=alter, seed=3)
    source_stack = np.stack([read_grey(path) for path in sources]).astype(np.int16)

    for name, source in result.items():
        written = read_grey(tmp_path / "out" / name)
        expected = apply_alteration(read_grey(source), alter, result.alterations.get(name, {}))
        distances = np.abs(source_stack - written.astype(np.int16)).mean(axis=(1, 2))
        own = distances[sources.index(source)]

        assert np.array_equal(written, expected)
        assert own > 0.5
        # Light means the copy stays nearer to its own source than to any other phantom. Flips are
        # left out because the phantoms are nearly symmetric and differ mainly in their texture.
        assert own < np.delete(distances, sources.index(source)).min()


def test_shift_amounts_and_interior(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=8, alter="shift", seed=1)

    for name, source in result.items():
        dy, dx = result.alterations[name]["dy"], result.alterations[name]["dx"]
        assert 2 <= abs(dy) <= 4
        assert 2 <= abs(dx) <= 4
        written = read_grey(tmp_path / "out" / name)
        original = read_grey(source)
        assert np.array_equal(written[8:-8, 8:-8], original[8 - dy:248 - dy, 8 - dx:248 - dx])


def test_alterations_cover_all_choices():
    assert set(ALTERATIONS) == {None, "shift", "flip", "noise", "contrast", "crop_resize"}


def test_flip_is_mirror(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=2, alter="flip")

    for name, source in result.items():
        written = read_grey(tmp_path / "out" / name)
        assert np.array_equal(written, read_grey(source)[:, ::-1])
        assert not np.array_equal(written, read_grey(source))


def test_noise_has_stated_sigma(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=2, alter="noise")

    for name, source in result.items():
        change = read_grey(tmp_path / "out" / name).astype(float) - read_grey(source)
        assert abs(change.mean()) < 0.1
        assert 2.8 < change.std() < 3.2


def test_contrast_change_is_bounded(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=6, alter="contrast")

    for name, source in result.items():
        amounts = result.alterations[name]
        change = read_grey(tmp_path / "out" / name).astype(float) - read_grey(source)
        assert amounts["gain"] in (0.95, 1.05)
        assert amounts["offset"] in (-5, 5)
        assert np.abs(change).max() <= 0.05 * 255 + 5 + 0.5
        assert abs(change.mean() - amounts["offset"]) < 0.6


def test_crop_resize_amounts(phantoms, tmp_path):
    sources, bases = phantoms
    result = plant_copies(sources, bases, tmp_path / "out", n_copies=4, alter="crop_resize")

    for name in result:
        amounts = result.alterations[name]
        assert amounts["side"] == 243
        assert 0 <= amounts["top"] <= 13
        assert 0 <= amounts["left"] <= 13
        with Image.open(tmp_path / "out" / name) as image:
            assert image.size == (256, 256)


def test_plant_copies_rejects_bad_arguments(phantoms, tmp_path):
    sources, bases = phantoms

    with pytest.raises(ValueError, match="alter must be one of .*got 'rotate'"):
        plant_copies(sources, bases, tmp_path / "a", n_copies=1, alter="rotate")
    with pytest.raises(ValueError, match=r"n_copies must be between 0 and len\(source_paths\)=8; got 9"):
        plant_copies(sources, bases, tmp_path / "b", n_copies=9)
    with pytest.raises(TypeError, match="n_copies must be an int; got float"):
        plant_copies(sources, bases, tmp_path / "c", n_copies=1.0)
    with pytest.raises(ValueError, match="base_paths and n_copies must give at least one image"):
        plant_copies(sources, [], tmp_path / "d", n_copies=0)
    with pytest.raises(ValueError, match="source_paths must contain at least one path"):
        plant_copies([], bases, tmp_path / "e", n_copies=0)


def test_planting_rejects_nonempty_out_dir(phantoms, tmp_path):
    sources, bases = phantoms
    plant_copies(sources, bases, tmp_path / "out", n_copies=1)

    with pytest.raises(ValueError, match="out_dir must not contain PNG files; got 7 in"):
        plant_copies(sources, bases, tmp_path / "out", n_copies=1)


def test_make_collapsed_counts_and_templates(phantoms, tmp_path):
    sources, _ = phantoms
    result = make_collapsed(sources, tmp_path / "out", n_templates=3, n_images=20, seed=2)

    used = list(result.values())
    assert len(result) == 20
    assert _png_names(tmp_path / "out") == [f"gen_{number:05d}.png" for number in range(20)]
    assert len(set(used)) == 3
    assert sorted(used.count(template) for template in set(used)) == [6, 7, 7]
    assert result.params["seed"] == 2


def test_make_collapsed_noise_around_template(phantoms, tmp_path):
    sources, _ = phantoms
    result = make_collapsed(sources, tmp_path / "out", n_templates=2, n_images=6, noise_sigma=2.0)

    for name, template in result.items():
        change = read_grey(tmp_path / "out" / name).astype(float) - read_grey(template)
        assert abs(change.mean()) < 0.1
        assert 1.8 < change.std() < 2.2


def test_make_collapsed_zero_noise_duplicates(phantoms, tmp_path):
    sources, _ = phantoms
    result = make_collapsed(sources, tmp_path / "out", n_templates=2, n_images=4, noise_sigma=0.0)

    for name, template in result.items():
        assert np.array_equal(read_grey(tmp_path / "out" / name), read_grey(template))


def test_make_collapsed_is_deterministic(phantoms, tmp_path):
    sources, _ = phantoms
    first = make_collapsed(sources, tmp_path / "a", n_images=10, seed=5)
    second = make_collapsed(sources, tmp_path / "b", n_images=10, seed=5)

    assert dict(first) == dict(second)
    for name in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_make_collapsed_rejects_bad_arguments(phantoms, tmp_path):
    sources, _ = phantoms

    with pytest.raises(ValueError, match=r"n_templates must be between 1 and len\(source_paths\)=8; got 9"):
        make_collapsed(sources, tmp_path / "a", n_templates=9)
    with pytest.raises(ValueError, match="n_images must be >= n_templates=5; got 4"):
        make_collapsed(sources, tmp_path / "b", n_images=4)
    with pytest.raises(ValueError, match="noise_sigma must be a finite number >= 0; got -1"):
        make_collapsed(sources, tmp_path / "c", noise_sigma=-1)


def test_make_blurred_matches_gaussian_filter(phantoms, tmp_path):
    sources, _ = phantoms
    result = make_blurred(sources[:3], tmp_path / "out", sigma=1.5, mode="P")

    assert list(result) == ["gen_00000.png", "gen_00001.png", "gen_00002.png"]
    for name, source in result.items():
        original = read_grey(source)
        expected = ndimage.gaussian_filter(original.astype(float), 1.5, mode="nearest")
        written = read_grey(tmp_path / "out" / name)
        assert np.array_equal(written, np.clip(np.rint(expected), 0, 255).astype(np.uint8))
        assert np.abs(np.diff(written.astype(float), axis=1)).mean() < np.abs(np.diff(original.astype(float), axis=1)).mean()


def test_make_blurred_rejects_bad_sigma(phantoms, tmp_path):
    sources, _ = phantoms

    with pytest.raises(ValueError, match="sigma must be a finite number > 0; got 0"):
        make_blurred(sources, tmp_path / "out", sigma=0)


@pytest.mark.realdata
def test_plant_copies_on_corpus(tmp_path):
    if not (CORPUS / "ct-real" / "split.csv").is_file():
        pytest.skip(f"lung-CT corpus not found at {CORPUS.resolve()}")
    with open(CORPUS / "ct-real" / "split.csv", newline="") as handle:
        train = [CORPUS / "ct-real" / row["file"] for row in csv.DictReader(handle) if row["split"] == "train"]
    sources = train[::18]
    bases = sorted((CORPUS / "ct-generated-dcgan").glob("gen_*.png"))[:20]

    result = plant_copies(sources, bases, tmp_path / "out", n_copies=5, mode="P", seed=0)

    source_stack = np.stack([read_grey(path) for path in sources]).astype(np.int16)
    for name in result.files:
        written = read_grey(tmp_path / "out" / name).astype(np.int16)
        nearest = np.abs(source_stack - written).mean(axis=(1, 2)).min()
        if name in result:
            assert nearest == 0
        else:
            # Every DCGAN sample of the corpus is at least 14 grey levels (mean absolute
            # difference) from every train slice, so 10 leaves a margin.
            assert nearest > 10
    for name, base in result.base.items():
        with Image.open(base) as original:
            assert np.array_equal(read_grey(tmp_path / "out" / name), np.asarray(original.convert("L")))
