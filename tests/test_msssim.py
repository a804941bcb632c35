"""MS-SSIM on top of scikit-image's SSIM: known properties and an independent numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import structural_similarity
from test_features import make_phantom

from synthgate.msssim import MS_SSIM_WEIGHTS, combine_terms, ms_ssim, ms_ssim_components


def _noisy(image, sigma, seed):
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


def _oracle_terms(x, y, data_range=255.0):
    """Wang et al.'s MS-SSIM terms written out with scipy only: Gaussian window, 2x2 means."""
    x, y = x.astype(float), y.astype(float)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    terms = []
    for scale in range(5):
        def blur(a):
            return ndimage.gaussian_filter(a, 1.5, truncate=3.5, mode="reflect")

        mean_x, mean_y = blur(x), blur(y)
        var_x = blur(x * x) - mean_x**2
        var_y = blur(y * y) - mean_y**2
        cov = blur(x * y) - mean_x * mean_y
        cs = (2 * cov + c2) / (var_x + var_y + c2)
        if scale == 4:
            cs = cs * (2 * mean_x * mean_y + c1) / (mean_x**2 + mean_y**2 + c1)
        terms.append(cs[5:-5, 5:-5].mean())
        x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))
        y = y.reshape(y.shape[0] // 2, 2, y.shape[1] // 2, 2).mean(axis=(1, 3))
    return np.array(terms)


def test_identical_images_give_one():
    image = make_phantom(1)
    assert ms_ssim(image, image, data_range=255) == pytest.approx(1.0, abs=1e-12)


def test_symmetric():
    a, b = make_phantom(1), make_phantom(2)
    assert ms_ssim(a, b, data_range=255) == pytest.approx(ms_ssim(b, a, data_range=255), abs=1e-12)


def test_decreases_with_noise():
    image = make_phantom(3, noise=1.0)
    values = [ms_ssim(image, _noisy(image, sigma, seed=4), data_range=255) for sigma in (1, 4, 16, 48)]
    assert all(later < earlier for earlier, later in zip(values, values[1:]))
    assert values[0] > 0.95


def test_terms_match_numpy_oracle():
    a, b = make_phantom(5), make_phantom(6)
    np.testing.assert_allclose(ms_ssim_components(a, b, data_range=255), _oracle_terms(a, b), atol=1e-10)


def test_single_scale_is_scikit_image_ssim():
    a, b = make_phantom(5), make_phantom(6)
    expected = structural_similarity(
        a.astype(float), b.astype(float), data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ms_ssim(a, b, data_range=255, weights=(1.0,)) == pytest.approx(expected, abs=1e-12)


def test_weights_are_wang_2003_and_sum_to_one():
    assert MS_SSIM_WEIGHTS == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    assert sum(MS_SSIM_WEIGHTS) == pytest.approx(1.0, abs=1e-3)


def test_data_range_changes_value():
    a, b = make_phantom(5), make_phantom(6)
    assert ms_ssim(a, b, data_range=255) != pytest.approx(ms_ssim(a, b, data_range=1.0), abs=1e-3)


def test_negative_term_counts_as_zero():
    assert combine_terms([0.9, -0.1, 0.8, 0.7, 0.6]) == 0.0
    assert combine_terms([1, 1, 1, 1, 1]) == 1.0


def test_inverted_image_gives_zero():
    image = make_phantom(9)
    assert ms_ssim(image, 255 - image, data_range=255) == 0.0


def test_rejects_bad_input():
    image = make_phantom(1)
    with pytest.raises(ValueError, match="data_range must be a positive finite number such as 255; got None"):
        ms_ssim(image, image, data_range=None)
    with pytest.raises(ValueError, match=r"image_a and image_b must be 2-D arrays of the same shape; got \(256, 256\) and \(128, 128\)"):
        ms_ssim(image, image[:128, :128], data_range=255)
    with pytest.raises(ValueError, match="image sides must be divisible by 2 \\*\\* \\(n_scales - 1\\) = 16 and at least 176"):
        ms_ssim(image[:160, :160], image[:160, :160], data_range=255)
    with pytest.raises(ValueError, match="image_b must hold finite, non-negative real values"):
        ms_ssim(image.astype(float), -image.astype(float), data_range=255)
    with pytest.raises(ValueError, match="weights must be 1 to 5 non-negative finite numbers"):
        ms_ssim(image, image, data_range=255, weights=(0.5, -0.5))
