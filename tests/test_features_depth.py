"""The spectrum, curvelet and properties extractors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from test_features import AIR, LUNG, TISSUE, make_phantom, make_phantoms

from synthgate.errors import DegenerateInputError
from synthgate.features import (
    CurveletExtractor,
    PropertiesExtractor,
    SpectrumExtractor,
    body_mask,
    get_extractor,
)
from synthgate.features.spectrum import frequencies_from_names

# Spectrum.


def test_spectrum_shape_names_and_frequencies():
    extractor = SpectrumExtractor()
    features = extractor.transform(make_phantoms(2))
    assert features.shape == (2, 180)
    assert features.dtype == np.float64
    assert extractor.feature_names[0] == "log_power_f0.0039"
    assert extractor.feature_names[63] == "log_power_f0.2500"
    assert extractor.feature_names[-1] == "log_power_f0.7031"
    np.testing.assert_allclose(frequencies_from_names(extractor.feature_names), extractor.frequencies, atol=5e-5)


def test_spectrum_rings_keep_parseval_total():
    image = make_phantom(3)
    extractor = SpectrumExtractor()
    ring_power = 10 ** extractor.transform(image[None])[0]
    # Power summed over all frequencies equals H * W times the pixel variance.
    total = np.sum(ring_power * extractor._counts)
    np.testing.assert_allclose(total, image.size * image.astype(float).var(), rtol=1e-9)


def test_spectrum_peak_of_a_cosine():
    rows = np.arange(256)[:, None]
    noise = np.random.default_rng(0).normal(0, 2, (256, 256))
    image = np.rint(128 + 60 * np.cos(2 * np.pi * 32 * rows / 256) + noise).astype(np.uint8)
    spectrum = SpectrumExtractor().transform(image[None])[0]
    assert np.argmax(spectrum) == 31  # ring 32, 0.125 cycles per pixel


def test_spectrum_checkerboard_lands_in_last_ring():
    rng = np.random.default_rng(0)
    base = rng.normal(120, 10, (256, 256))
    checker = 2.0 * (-1.0) ** np.add.outer(np.arange(256), np.arange(256))
    plain = SpectrumExtractor().transform(np.clip(np.rint(base), 0, 255).astype(np.uint8)[None])[0]
    patterned = SpectrumExtractor().transform(np.clip(np.rint(base + checker), 0, 255).astype(np.uint8)[None])[0]
    assert patterned[-1] - plain[-1] > 1.0
    assert np.abs(patterned[:-1] - plain[:-1]).max() < 0.5


def test_spectrum_other_shape():
    extractor = SpectrumExtractor(shape=(64, 128))
    features = extractor.transform(make_phantoms(1, size=128)[:, :64, :])
    assert features.shape == (1, len(extractor.feature_names))
    assert np.all(np.isfinite(features))


def test_spectrum_rejects_wrong_shape_and_params():
    with pytest.raises(ValueError, match=r"images must have shape \(n, 256, 256\); got \(1, 64, 64\)"):
        SpectrumExtractor().transform(np.zeros((1, 64, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match="shape must be \\(height, width\\) with integers >= 8; got 256"):
        SpectrumExtractor(shape=256)


def test_spectrum_constant_image_raises():
    images = make_phantoms(2)
    images[1] = 77
    with pytest.raises(DegenerateInputError, match="row 1: the image has a frequency ring with zero power"):
        SpectrumExtractor().transform(images)


def test_frequencies_from_names_rejects_other_names():
    with pytest.raises(ValueError, match="feature_names must be spectrum names like 'log_power_f0.2500'; got 'lbp_u0'"):
        frequencies_from_names(["log_power_f0.0039", "lbp_u0"])


# Curvelet.


def test_curvelet_names_angles_and_shape():
    extractor = CurveletExtractor()
    features = extractor.transform(make_phantoms(2))
    assert features.shape == (2, 72)
    assert extractor.feature_names[:2] == ("curvelet_s1_d01_log_energy", "curvelet_s1_d01_sparsity")
    assert extractor.feature_names[-1] == "curvelet_s3_d12_sparsity"
    assert extractor.angles.shape == (3, 12)
    assert np.all(np.diff(extractor.angles, axis=1) > 0)
    assert extractor.angles.min() >= 0
    assert extractor.angles.max() < 180


def test_curvelet_sparsity_in_unit_interval():
    sparsity = CurveletExtractor().transform(make_phantoms(3))[:, 1::2]
    assert sparsity.min() >= 0
    assert sparsity.max() <= 1


def test_curvelet_blur_lowers_fine_scale_energy():
    image = make_phantom(5)
    blurred = np.clip(np.rint(ndimage.gaussian_filter(image.astype(float), 2.0)), 0, 255).astype(np.uint8)
    extractor = CurveletExtractor()
    sharp_features, blurred_features = extractor.transform(np.stack([image, blurred]))
    energy = slice(0, None, 2)
    fine = np.array([name.startswith("curvelet_s3") for name in extractor.feature_names])[energy]
    drop = (sharp_features[energy] - blurred_features[energy])[fine]
    assert drop.min() > 0.5  # more than a factor 3 in band power


def test_curvelet_energy_follows_edge_direction():
    image = np.full((256, 256), float(AIR))
    image[:, 96:160] = TISSUE  # a vertical band: horizontal frequencies, near 0 degrees
    image = np.rint(image + np.random.default_rng(0).normal(0, 2, image.shape)).astype(np.uint8)
    extractor = CurveletExtractor()
    energy = extractor.transform(image[None])[0][0::2].reshape(3, 12)
    strongest = extractor.angles[np.arange(3), np.argmax(energy, axis=1)]
    assert np.all(np.minimum(strongest, 180 - strongest) < 10)


def test_curvelet_rejects_bad_params():
    with pytest.raises(ValueError, match="directions must be a multiple of 6 from 6 to 48; got 8"):
        CurveletExtractor(directions=8)
    with pytest.raises(ValueError, match="scales must be an integer in 1-5; got 0"):
        CurveletExtractor(scales=0)
    with pytest.raises(ValueError, match=r"images must have shape \(n, 256, 256\)"):
        CurveletExtractor().transform(np.zeros((1, 128, 128), dtype=np.uint8))


def test_curvelet_slice_without_body_raises():
    images = make_phantoms(2)
    images[0] = np.random.default_rng(0).integers(40, 80, (256, 256), dtype=np.uint8)
    with pytest.raises(DegenerateInputError, match="row 0: the image has no body"):
        CurveletExtractor().transform(images)


def test_curvelet_params_change_names():
    extractor = get_extractor("curvelet", scales=2, directions=6)
    assert len(extractor.feature_names) == 2 * 6 * 2
    assert extractor.params["directions"] == 6


# Properties.


def test_properties_match_direct_computation():
    image = make_phantom(7)
    row = PropertiesExtractor().transform(image[None])[0]
    mask = body_mask(image)
    counts = np.bincount(image.ravel(), minlength=256)
    shares = counts[counts > 0] / image.size

    assert row[0] == pytest.approx(image.mean())
    assert row[1] == pytest.approx(mask.mean())
    assert row[2] == pytest.approx(np.mean(mask & (image < 128)))
    assert row[3] == pytest.approx(ndimage.laplace(image.astype(float), mode="mirror").var())
    assert row[4] == pytest.approx(-np.sum(shares * np.log2(shares)))


def test_properties_of_a_two_level_image():
    image = np.full((64, 64), AIR, dtype=np.uint8)
    image[16:48, 16:48] = TISSUE
    image[24:40, 24:40] = LUNG
    row = PropertiesExtractor().transform(image[None])[0]
    assert row[1] == pytest.approx(32 * 32 / 64**2)
    assert row[2] == pytest.approx(16 * 16 / 64**2)
    assert row[4] == pytest.approx(-sum(p * np.log2(p) for p in (0.75, 0.1875, 0.0625)))


def test_properties_blur_lowers_laplacian_variance():
    image = make_phantom(8)
    blurred = np.clip(np.rint(ndimage.gaussian_filter(image.astype(float), 1.5)), 0, 255).astype(np.uint8)
    sharp_row, blurred_row = PropertiesExtractor().transform(np.stack([image, blurred]))
    assert blurred_row[3] < sharp_row[3] / 4


def test_properties_slice_without_body_has_zero_fractions():
    image = np.random.default_rng(1).integers(40, 80, (1, 64, 64), dtype=np.uint8)
    row = PropertiesExtractor().transform(image)[0]
    assert row[1] == 0
    assert row[2] == 0
