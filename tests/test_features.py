"""Feature extractors, the body mask, the registry and the cached ``compute_features``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

from synthgate.cache import FeatureCache, cache_namespace
from synthgate.dataset import load_image_set
from synthgate.errors import DegenerateInputError
from synthgate.features import (
    EXTRACTOR_NAMES,
    FeatureExtractor,
    PixelExtractor,
    TextureExtractor,
    body_mask,
    body_masks,
    compute_features,
    get_extractor,
)
from synthgate.features.texture import GLCM_PROPERTIES, local_binary_pattern_uniform

AIR, LUNG, TISSUE = 60, 85, 236


def make_phantom(seed: int, *, size: int = 256, noise: float = 8.0) -> np.ndarray:
    """A bright elliptical body with two dark elliptical lungs on air, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    centre_y = 0.5 + rng.uniform(-0.03, 0.03)
    centre_x = 0.5 + rng.uniform(-0.03, 0.03)
    body = ((yy - centre_y) / 0.33) ** 2 + ((xx - centre_x) / 0.43) ** 2 <= 1
    image = np.where(body, float(TISSUE), float(AIR))
    for side in (-1, 1):
        lung = ((yy - centre_y) / 0.22) ** 2 + ((xx - centre_x - side * 0.19) / 0.13) ** 2 <= 1
        image[lung] = LUNG
    image += rng.normal(0.0, noise, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def make_phantoms(n: int, *, first_seed: int = 0, size: int = 256) -> np.ndarray:
    return np.stack([make_phantom(first_seed + i, size=size) for i in range(n)])


def disc(size: int, radius: float, centre: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


# Body mask.


def test_body_mask_disc_phantom():
    size = 128
    outline = disc(size, 40, (60, 64))
    lung = disc(size, 15, (60, 64))
    table = np.zeros((size, size), dtype=bool)
    table[115:119, 10:118] = True
    image = np.full((size, size), AIR, dtype=np.uint8)
    image[outline] = TISSUE
    image[lung] = LUNG
    image[table] = TISSUE

    mask = body_mask(image)

    assert mask.dtype == bool
    assert np.array_equal(mask, outline)
    assert mask[lung].all()
    assert not mask[table].any()


def test_body_mask_keeps_lung_open_to_air():
    size = 64
    image = np.full((size, size), AIR, dtype=np.uint8)
    image[disc(size, 25, (32, 32))] = TISSUE
    image[disc(size, 10, (32, 32))] = LUNG
    image[30:34, 32:] = AIR  # a channel from the lung to the outside air

    mask = body_mask(image)

    assert not mask[32, 32]
    assert mask[32, 10]


def test_body_mask_without_body_is_empty():
    image = np.random.default_rng(0).integers(0, 100, (64, 64), dtype=np.uint8)
    assert not body_mask(image).any()


def test_body_masks_match_single_masks():
    images = make_phantoms(3, size=64)
    masks = body_masks(images)
    assert masks.shape == images.shape
    for image, mask in zip(images, masks):
        assert np.array_equal(mask, body_mask(image))


def test_body_mask_rejects_bad_input():
    with pytest.raises(ValueError, match="image must be a 2-D uint8 array; got shape=\\(4, 4\\), dtype=float64"):
        body_mask(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="threshold must be an integer in 1-255; got 0"):
        body_mask(np.zeros((4, 4), dtype=np.uint8), threshold=0)
    with pytest.raises(ValueError, match="images must be a 3-D uint8 array"):
        body_masks(np.zeros((4, 4), dtype=np.uint8))


# Pixels extractor.


def test_pixels_shape_dtype_and_names():
    extractor = PixelExtractor()
    features = extractor.transform(make_phantoms(3))
    assert features.shape == (3, 64 * 64)
    assert features.dtype == np.float32
    assert len(extractor.feature_names) == features.shape[1]
    assert extractor.feature_names[0] == "pixel_0000"
    assert extractor.feature_names[-1] == "pixel_4095"


def test_pixels_rows_are_centred_unit_vectors():
    features = PixelExtractor(size=32).transform(make_phantoms(4))
    assert features.shape == (4, 32 * 32)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(features.mean(axis=1), 0.0, atol=1e-6)


def test_pixels_block_mean_with_background():
    image = make_phantom(1)
    vector = PixelExtractor(size=16, background=7).transform(image[None])[0]

    masked = np.where(body_mask(image), image, 7).astype(np.float64)
    expected = masked.reshape(16, 16, 16, 16).mean(axis=(1, 3)).ravel()
    expected -= expected.mean()
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(vector, expected, atol=1e-6)


def test_pixels_cosine_of_identical_slices_is_one():
    image = make_phantom(2)
    features = PixelExtractor().transform(np.stack([image, image, make_phantom(3)]))
    assert features[0] @ features[1] == pytest.approx(1.0, abs=1e-6)
    assert features[0] @ features[2] < 0.999


def test_pixels_rejects_bad_params():
    with pytest.raises(ValueError, match="size must be a positive integer; got 0"):
        PixelExtractor(size=0)
    with pytest.raises(ValueError, match="background must be an integer grey level in 0-255; got 300"):
        PixelExtractor(background=300)
    with pytest.raises(ValueError, match="size must divide the image height and width; got size=64 for images of 100x100"):
        PixelExtractor().transform(np.zeros((1, 100, 100), dtype=np.uint8))


def test_pixels_slice_without_body_raises():
    images = make_phantoms(3, size=64)
    images[1] = np.random.default_rng(0).integers(40, 80, (64, 64), dtype=np.uint8)
    with pytest.raises(DegenerateInputError, match="row 1: the image has no body") as caught:
        PixelExtractor(size=16).transform(images)
    assert caught.value.rows == (1,)


def test_pixels_constant_vector_raises():
    images = make_phantoms(2, size=64)
    images[0] = TISSUE  # the body mask covers the whole slice, so nothing varies
    with pytest.raises(DegenerateInputError, match="row 0: the image is constant .* norm 0"):
        PixelExtractor(size=16).transform(images)


# Texture extractor.


def test_texture_shape_dtype_and_names():
    extractor = TextureExtractor()
    features = extractor.transform(make_phantoms(2))
    names = extractor.feature_names
    assert features.shape == (2, 11 + 6 * 3 * 4 + 10)
    assert features.dtype == np.float64
    assert len(names) == features.shape[1]
    assert len(set(names)) == len(names)
    assert np.all(np.isfinite(features))
    for name in ("first_order_p95", "glcm_contrast_d2_a45", "glcm_asm_d4_a135", "lbp_u3", "lbp_u9"):
        assert name in names


def test_texture_names_follow_distances():
    extractor = TextureExtractor(levels=16, distances=(3,))
    assert len(extractor.feature_names) == 11 + 6 * 4 + 10
    assert "glcm_correlation_d3_a90" in extractor.feature_names
    assert extractor.params["distances"] == [3]


def test_texture_first_order_matches_numpy_and_scipy():
    image = make_phantom(4)
    extractor = TextureExtractor()
    row = dict(zip(extractor.feature_names, extractor.transform(image[None])[0]))
    mask = body_mask(image)
    values = image[mask].astype(np.float64)

    assert row["first_order_mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert row["first_order_std"] == pytest.approx(values.std(), rel=1e-12)
    assert row["first_order_skewness"] == pytest.approx(stats.skew(values), rel=1e-9)
    assert row["first_order_kurtosis"] == pytest.approx(stats.kurtosis(values), rel=1e-9)
    shares = np.bincount(image[mask], minlength=256) / mask.sum()
    assert row["first_order_entropy"] == pytest.approx(stats.entropy(shares, base=2), rel=1e-12)
    for q in (5, 25, 50, 75, 95):
        assert row[f"first_order_p{q}"] == np.percentile(values, q, method="inverted_cdf")
    assert row["first_order_body_fraction"] == mask.mean()


def test_texture_percentiles_at_exact_ties():
    # Four grey levels with 1024 pixels each: the cumulative share reaches exactly 25%, 50% and
    # 75% at a level, where the inverted CDF takes that level and not the next.
    values = np.repeat(np.array([200, 210, 220, 230], dtype=np.uint8), 1024)
    image = np.random.default_rng(0).permutation(values).reshape(1, 64, 64)
    extractor = TextureExtractor()
    row = dict(zip(extractor.feature_names, extractor.transform(image)[0]))
    assert row["first_order_body_fraction"] == 1.0
    assert row["first_order_p25"] == 200
    assert row["first_order_p50"] == 210
    assert row["first_order_p75"] == 220
    assert row["first_order_p95"] == 230
    assert row["first_order_p50"] == np.percentile(values, 50, method="inverted_cdf")


def test_texture_glcm_matches_graycoprops():
    image = make_phantom(5)
    extractor = TextureExtractor(levels=32, distances=(1, 2, 4))
    row = dict(zip(extractor.feature_names, extractor.transform(image[None])[0]))

    mask = body_mask(image)
    quantised = np.where(mask, 1 + image.astype(np.uint16) * 32 // 256, 0).astype(np.uint8)
    angles = np.deg2rad([0, 45, 90, 135])
    glcm = graycomatrix(quantised, [1, 2, 4], angles, levels=33, symmetric=True)[1:, 1:]
    for prop in GLCM_PROPERTIES:
        expected = graycoprops(glcm, prop)
        for d_index, distance in enumerate((1, 2, 4)):
            for a_index, angle in enumerate((0, 45, 90, 135)):
                name = f"glcm_{prop.lower()}_d{distance}_a{angle}"
                assert row[name] == pytest.approx(expected[d_index, a_index], rel=1e-12), name


@pytest.mark.parametrize("case", ["phantom", "noise", "flat", "small-range", "odd-shape"])
def test_lbp_matches_skimage(case):
    rng = np.random.default_rng(7)
    image = {
        "phantom": make_phantom(6),
        "noise": rng.integers(0, 256, (64, 64), dtype=np.uint8),
        "flat": np.full((32, 32), TISSUE, dtype=np.uint8),
        "small-range": rng.integers(230, 233, (64, 64), dtype=np.uint8),
        "odd-shape": rng.integers(0, 3, (37, 19), dtype=np.uint8),
    }[case]
    expected = local_binary_pattern(image, 8, 1, "uniform")
    assert np.array_equal(local_binary_pattern_uniform(image), expected)


def test_texture_lbp_shares_sum_to_one():
    extractor = TextureExtractor()
    features = extractor.transform(make_phantoms(2))
    lbp = features[:, [name.startswith("lbp_") for name in extractor.feature_names]]
    assert lbp.shape[1] == 10
    np.testing.assert_allclose(lbp.sum(axis=1), 1.0, rtol=1e-12)


def test_texture_rejects_bad_params():
    with pytest.raises(ValueError, match="levels must be an integer in 2-255; got 256"):
        TextureExtractor(levels=256)
    with pytest.raises(ValueError, match="distances must be distinct positive integers; got \\(1, 1\\)"):
        TextureExtractor(distances=(1, 1))
    with pytest.raises(ValueError, match="distances must be distinct positive integers; got \\(0,\\)"):
        TextureExtractor(distances=(0,))


def test_texture_constant_body_raises():
    images = make_phantoms(2, size=64)
    images[1] = TISSUE
    images[1, :2, :2] = AIR  # not constant overall, but constant inside the body
    with pytest.raises(DegenerateInputError, match="row 1: the image has a constant grey level inside the body"):
        TextureExtractor().transform(images)


def test_texture_undefined_glcm_correlation_raises():
    # All grey levels 232-239 fall into one of 32 quantisation bins: first-order statistics
    # exist, GLCM correlation does not.
    image = np.random.default_rng(0).integers(232, 240, (1, 64, 64), dtype=np.uint8)
    with pytest.raises(DegenerateInputError, match="row 0: .*GLCM correlation is undefined"):
        TextureExtractor(levels=32).transform(image)


def test_texture_body_too_small_for_distance_raises():
    image = np.full((1, 64, 64), AIR, dtype=np.uint8)
    image[0, 30:33, 30:33] = [[200, 240, 220], [250, 210, 230], [215, 245, 205]]
    with pytest.raises(DegenerateInputError, match="row 0: the image has no pair of body pixels"):
        TextureExtractor(distances=(1, 4)).transform(image)


def test_texture_slice_without_body_raises():
    images = make_phantoms(2, size=64)
    images[0] = np.random.default_rng(0).integers(40, 80, (64, 64), dtype=np.uint8)
    with pytest.raises(DegenerateInputError, match="row 0: the image has no body"):
        TextureExtractor().transform(images)


# Properties shared by both extractors.


@pytest.mark.parametrize("name", EXTRACTOR_NAMES)
def test_extractor_invariant_to_image_order(name):
    extractor = get_extractor(name)
    images = make_phantoms(4, first_seed=10)
    permutation = np.array([2, 0, 3, 1])
    assert np.array_equal(extractor.transform(images[permutation]), extractor.transform(images)[permutation])


@pytest.mark.parametrize("name", EXTRACTOR_NAMES)
def test_extractor_deterministic_and_batch_independent(name):
    images = make_phantoms(3, first_seed=20)
    first = get_extractor(name).transform(images)
    second = get_extractor(name).transform(images)
    single = np.concatenate([get_extractor(name).transform(image[None]) for image in images])
    assert np.array_equal(first, second)
    assert np.array_equal(first, single)


@pytest.mark.parametrize("name", EXTRACTOR_NAMES)
def test_extractor_accepts_empty_stack(name):
    extractor = get_extractor(name)
    features = extractor.transform(np.empty((0, 256, 256), dtype=np.uint8))
    assert features.shape == (0, len(extractor.feature_names))


@pytest.mark.parametrize("name", EXTRACTOR_NAMES)
def test_extractor_follows_protocol(name):
    extractor = get_extractor(name)
    assert isinstance(extractor, FeatureExtractor)
    assert extractor.name == name
    assert isinstance(extractor.version, int)
    assert cache_namespace(extractor.name, extractor.version, extractor.params).startswith(f"{name}-v")


def test_get_extractor_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="extractor must be one of \\['pixels', 'texture', .*\\]; got 'inception'"):
        get_extractor("inception")


def test_get_extractor_unknown_param_lists_valid_ones():
    with pytest.raises(ValueError, match="parameters of extractor 'pixels' must be among \\['size', 'background'\\]"):
        get_extractor("pixels", sizes=32)


def test_get_extractor_passes_params():
    assert get_extractor("pixels", size=32).params["size"] == 32
    assert get_extractor("texture", levels=16).params["levels"] == 16


# compute_features and the cache.


class CountingExtractor:
    """Delegates to a real extractor and counts the images it transforms."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self.params = inner.params
        self.feature_names = inner.feature_names
        self.n_transformed = 0

    def transform(self, images):
        self.n_transformed += len(images)
        return self.inner.transform(images)


def write_pngs(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"img_{index:02d}.png")


@pytest.fixture
def phantom_folder(tmp_path):
    folder = tmp_path / "images"
    write_pngs(folder, make_phantoms(5, first_seed=30))
    return folder


def test_compute_features_uses_cache(phantom_folder, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    image_set = load_image_set(phantom_folder, role="generated")
    extractor = CountingExtractor(get_extractor("pixels", size=32))

    first = compute_features(image_set, extractor, cache=cache, batch_size=2)
    assert extractor.n_transformed == 5
    assert np.array_equal(first, extractor.inner.transform(image_set.images()))

    extractor.n_transformed = 0
    second = compute_features(image_set, extractor, cache=cache)
    assert extractor.n_transformed == 0
    assert np.array_equal(first, second)
    assert second.dtype == np.float32


def test_compute_features_changed_file_misses_only_it(phantom_folder, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    extractor = CountingExtractor(get_extractor("texture"))
    before = compute_features(load_image_set(phantom_folder, role="generated"), extractor, cache=cache)

    Image.fromarray(make_phantom(99)).save(phantom_folder / "img_03.png")
    extractor.n_transformed = 0
    after = compute_features(load_image_set(phantom_folder, role="generated"), extractor, cache=cache)

    assert extractor.n_transformed == 1
    assert np.array_equal(np.delete(after, 3, axis=0), np.delete(before, 3, axis=0))
    assert not np.array_equal(after[3], before[3])


def test_compute_features_changed_param_uses_new_namespace(phantom_folder, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    image_set = load_image_set(phantom_folder, role="generated")
    compute_features(image_set, get_extractor("texture", levels=32), cache=cache)

    other = CountingExtractor(get_extractor("texture", levels=16))
    compute_features(image_set, other, cache=cache)

    namespaces = {
        cache_namespace("texture", TextureExtractor.version, TextureExtractor(levels=levels).params)
        for levels in (16, 32)
    }
    assert other.n_transformed == 5
    assert len(namespaces) == 2
    assert {path.name for path in (tmp_path / "cache").iterdir()} >= namespaces


def test_compute_features_reextracts_invalid_cached_row(phantom_folder, tmp_path, caplog):
    cache = FeatureCache(tmp_path / "cache")
    image_set = load_image_set(phantom_folder, role="generated")
    extractor = CountingExtractor(get_extractor("pixels", size=16))
    expected = compute_features(image_set, extractor, cache=cache)

    namespace = cache_namespace(extractor.name, extractor.version, extractor.params)
    cache.save(namespace, image_set.file_sha256[2], np.zeros(7, dtype=np.float32))
    extractor.n_transformed = 0
    with caplog.at_level("WARNING", logger="synthgate.features.extract"):
        features = compute_features(image_set, extractor, cache=cache)

    assert extractor.n_transformed == 1
    assert np.array_equal(features, expected)
    assert "ignoring 1 cached pixels rows" in caplog.text


def test_compute_features_extracts_duplicate_files_once(tmp_path):
    image = make_phantom(40)
    write_pngs(tmp_path / "images", [image, make_phantom(41), image])
    extractor = CountingExtractor(get_extractor("pixels"))
    features = compute_features(load_image_set(tmp_path / "images", role="real"), extractor)
    assert extractor.n_transformed == 2
    assert np.array_equal(features[0], features[2])


def test_image_without_body_excluded_at_load(tmp_path):
    images = make_phantoms(3, first_seed=50)
    images[1] = np.random.default_rng(0).integers(40, 80, (256, 256), dtype=np.uint8)
    write_pngs(tmp_path / "images", images)
    image_set = load_image_set(tmp_path / "images", role="generated")
    assert [path.name for path in image_set.paths] == ["img_00.png", "img_02.png"]
    assert image_set.failures[0].path.name == "img_01.png"
    assert image_set.failures[0].reason.startswith("no body: no pixel reaches grey level 128")
    assert compute_features(image_set, get_extractor("pixels")).shape == (2, 4096)


def test_compute_features_parallel_matches_serial(phantom_folder):
    image_set = load_image_set(phantom_folder, role="generated")
    serial = compute_features(image_set, get_extractor("texture"), n_jobs=1)
    parallel = compute_features(image_set, get_extractor("texture"), n_jobs=2, batch_size=3)
    assert np.array_equal(serial, parallel)


def test_compute_features_rejects_bad_options(phantom_folder):
    image_set = load_image_set(phantom_folder, role="generated")
    with pytest.raises(ValueError, match="n_jobs must be a positive integer; got 0"):
        compute_features(image_set, get_extractor("pixels"), n_jobs=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 1.5"):
        compute_features(image_set, get_extractor("pixels"), batch_size=1.5)


# Real data.


@pytest.mark.realdata
def test_features_on_real_ct(real_data_dir):
    real = load_image_set(real_data_dir / "ct-real", role="real")
    generated = load_image_set(real_data_dir / "ct-generated-dcgan", role="generated", pattern="gen_*.png")
    real_images = real.images()
    generated_images = generated.images(np.arange(0, len(generated), 10))

    for images in (real_images, generated_images):
        body_fraction = body_masks(images).mean(axis=(1, 2))
        assert body_fraction.min() > 0.15
        assert body_fraction.max() < 0.99

    pixels = PixelExtractor().transform(real_images)
    np.testing.assert_allclose(np.linalg.norm(pixels, axis=1), 1.0, atol=1e-5)
    # Neighbouring slices of one LUNA16 volume are near-duplicates.
    paths = real.relative_paths()
    neighbours = [
        i for i in range(len(paths) - 1)
        if paths[i].startswith("LUNA16-") and paths[i].split("/")[0] == paths[i + 1].split("/")[0]
    ]
    cosine = np.sum(pixels[neighbours] * pixels[[i + 1 for i in neighbours]], axis=1)
    assert np.median(cosine) > 0.95

    texture = TextureExtractor().transform(np.concatenate([real_images[::8], generated_images[::4]]))
    assert np.all(np.isfinite(texture))
