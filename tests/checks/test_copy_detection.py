"""copy_detection: whole-slice, local and blended copies among synthetic CT-like phantoms."""

import numpy as np
import pytest
from scipy import ndimage

from synthgate.checks.copy_detection import STATISTICS, compute_copy_detection
from synthgate.features import get_extractor


def _phantom(rng):
    """Return a 256x256 uint8 slice: a textured body (about 215) with two dark lungs (about 80)."""
    rows, cols = np.mgrid[0:256, 0:256]
    centre_row, centre_col = 128 + rng.integers(-10, 11, size=2)
    body = ((rows - centre_row) / rng.integers(85, 100)) ** 2 + ((cols - centre_col) / rng.integers(100, 118)) ** 2 <= 1
    image = np.zeros((256, 256))
    texture = ndimage.gaussian_filter(rng.normal(size=(256, 256)), 1.5) * 60
    image[body] = 215 + texture[body]
    for side in (-1, 1):
        lung = (((rows - centre_row) / rng.integers(45, 60)) ** 2
                + ((cols - centre_col - side * rng.integers(40, 55)) / rng.integers(25, 35)) ** 2) <= 1
        image[lung] = 80 + 2 * texture[lung]
    vessels = ndimage.gaussian_filter((rng.random((256, 256)) > 0.995).astype(float), 1.2) * 900
    image = np.where(body, image + vessels, image)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    real = np.stack([_phantom(rng) for _ in range(16)])
    fresh = [_phantom(rng) for _ in range(8)]
    shifted = np.roll(real[1], (3, -2), axis=(0, 1))
    flipped = real[2][:, ::-1]
    noisy = np.clip(real[3] + rng.normal(0, 3, real[3].shape), 0, 255).astype(np.uint8)
    brighter = np.clip(real[4] * 1.05 + 5, 0, 255).astype(np.uint8)
    local = _phantom(rng)
    local[96:192, 80:176] = real[5][96:192, 80:176]
    blend = np.rint(0.5 * real[6] + 0.5 * real[7]).astype(np.uint8)
    generated = np.stack(fresh + [shifted, flipped, noisy, brighter, local, blend])
    extractor = get_extractor("pixels")
    return real, generated, extractor.transform(real), extractor.transform(generated)


@pytest.fixture(scope="module")
def result(sets):
    return _run(sets)


def _run(sets, **options):
    real, generated, real_features, generated_features = sets
    return compute_copy_detection(real_features, generated_features, real_images=real,
                                  generated_images=generated, **options)


def _kinds(result):
    return {row["generated_row"]: (row["kind"], row["real_row"]) for row in result.evidence.table}


def test_whole_copies_are_found_with_their_source(result):
    kinds = _kinds(result)
    assert kinds[8] == ("whole", 1)
    assert kinds[9] == ("whole", 2)
    assert kinds[10] == ("whole", 3)
    assert kinds[11] == ("whole", 4)


def test_local_copy_is_found_and_boxed(result):
    row = next(row for row in result.evidence.table if row["generated_row"] == 12)
    assert row["kind"] == "local"
    assert row["real_row"] == 5
    top, left, bottom, right = row["generated_box"]
    assert top >= 80
    assert bottom <= 208
    assert left >= 64
    assert right <= 192


def test_blend_is_found_with_both_slices(result):
    row = next(row for row in result.evidence.table if row["generated_row"] == 13)
    assert row["kind"] == "blend"
    assert {row["real_row"], row["second_real_row"]} == {6, 7}


def test_fresh_images_are_not_copies(result):
    assert result.statistics["copies"] == 6
    flagged = {row["generated_row"] for row in result.evidence.table if row["kind"] != "closest"}
    assert flagged == {8, 9, 10, 11, 12, 13}
    assert set(result.statistics) == set(STATISTICS)


def test_verification_budget_is_reported(sets):
    result = _run(sets, max_verified=4)
    assert result.statistics["verified"] == 4
    assert result.statistics["unverified"] == 10


def test_same_input_gives_identical_numbers(sets, result):
    assert dict(_run(sets).statistics) == dict(result.statistics)


def test_images_are_required(sets):
    real, generated, real_features, generated_features = sets
    with pytest.raises(ValueError, match=r"generated_images must be given: copy_detection compares the decoded slices"):
        compute_copy_detection(real_features, generated_features, real_images=real)


def test_features_must_be_square_grids(sets):
    real, generated, _, _ = sets
    with pytest.raises(ValueError, match=r"features must be square body-masked pixel grids .* got 93 columns"):
        compute_copy_detection(np.zeros((16, 93)), np.zeros((14, 93)), real_images=real, generated_images=generated)


def test_image_count_must_match_features(sets):
    real, generated, real_features, generated_features = sets
    with pytest.raises(ValueError, match=r"real_images must have one image per feature row \(16\); got 15"):
        compute_copy_detection(real_features, generated_features, real_images=real[:15], generated_images=generated)
