"""compute_structural_diversity on synthetic slices: pair means, the real-split spread, decoding."""

import numpy as np
import pytest

from synthgate.checks.structural_diversity import STATISTICS, _draw_pairs, compute_structural_diversity
from synthgate.errors import DegenerateInputError
from synthgate.msssim import ms_ssim

SIZE = 256


def _slice(rng, *, body=(0.33, 0.43), jitter=0.08, noise=6.0):
    """A body ellipse with two lungs and a few bright vessels at random positions."""
    yy, xx = np.mgrid[:SIZE, :SIZE] / SIZE
    cy, cx = 0.5 + rng.uniform(-jitter, jitter, 2)
    height, width = np.array(body) * rng.uniform(0.8, 1.2, 2)
    image = np.full((SIZE, SIZE), 40.0)
    image[((yy - cy) / height) ** 2 + ((xx - cx) / width) ** 2 <= 1] = 230
    for side in (-1, 1):
        lung = ((yy - cy) / (0.6 * height)) ** 2 + ((xx - cx - side * 0.45 * width) / (0.3 * width)) ** 2 <= 1
        image[lung] = 80
    for _ in range(6):
        vy, vx = rng.uniform(0.25, 0.75, 2)
        image[((yy - vy) ** 2 + (xx - vx) ** 2) <= rng.uniform(0.0001, 0.0006)] = 200
    image += rng.normal(0, noise, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _diverse(n, seed):
    rng = np.random.default_rng(seed)
    return np.stack([_slice(rng, jitter=0.1) for _ in range(n)])


def _templates(n_templates, n_images, seed, noise=2.0):
    """``n_images`` noisy copies of ``n_templates`` slices of one narrow anatomy."""
    rng = np.random.default_rng(seed)
    templates = [_slice(rng, jitter=0.01, noise=3.0).astype(float) for _ in range(n_templates)]
    picks = rng.permutation(np.arange(n_images) % n_templates)
    return np.stack([np.clip(np.rint(templates[k] + rng.normal(0, noise, (SIZE, SIZE))), 0, 255) for k in picks]).astype(np.uint8)


@pytest.fixture(scope="module")
def real():
    return _diverse(24, seed=0)


@pytest.fixture(scope="module")
def groups():
    return np.repeat(np.arange(8), 3)


class CountingSource:
    """An image source that records which images were decoded."""

    def __init__(self, stack):
        self.stack = stack
        self.requested = []

    def __len__(self):
        return len(self.stack)

    def images(self, indices):
        self.requested.append(np.asarray(indices).copy())
        return self.stack[np.asarray(indices)]


def test_pair_means_match_ms_ssim(real, groups):
    generated = _diverse(12, seed=1)
    result = compute_structural_diversity(real, generated, real_groups=groups, n_pairs=10, seed=3)
    rng = np.random.default_rng(3)
    generated_pairs = _draw_pairs(len(generated), 10, rng)
    real_pairs = _draw_pairs(len(real), 10, rng)
    expected_generated = [ms_ssim(generated[a], generated[b], data_range=255) for a, b in generated_pairs]
    expected_real = [ms_ssim(real[a], real[b], data_range=255) for a, b in real_pairs]
    assert result.statistics["generated_msssim"] == pytest.approx(np.mean(expected_generated), abs=1e-12)
    assert result.statistics["real_msssim"] == pytest.approx(np.mean(expected_real), abs=1e-12)
    np.testing.assert_allclose(result.evidence.distributions["generated"], expected_generated, atol=1e-12)


def test_narrow_templates_fail_against_diverse_real(real, groups):
    result = compute_structural_diversity(real, _templates(20, 60, seed=2), real_groups=groups, n_pairs=30)
    assert result.statistics["msssim_gap"] > 0.2
    assert result.statistics["msssim_excess"] > 0.05


def test_same_distribution_has_small_excess(real, groups):
    result = compute_structural_diversity(real, _diverse(24, seed=5), real_groups=groups, n_pairs=30)
    assert result.statistics["msssim_excess"] < 0.05
    assert result.statistics["real_split_spread"] > 0


def test_most_similar_pairs_in_evidence(real, groups):
    generated = _diverse(10, seed=1)
    generated[3] = generated[7]  # a duplicate
    result = compute_structural_diversity(real, generated, real_groups=groups, n_pairs=60, n_evidence=2, seed=1)
    a, b, value = result.evidence.generated_pairs[0]
    assert {a, b} == {3, 7}
    assert value == pytest.approx(1.0)
    assert len(result.evidence.generated_pairs) == 2


def test_decodes_only_sampled_images_in_batches(real):
    source = CountingSource(_diverse(100, seed=6))
    compute_structural_diversity(real, source, n_pairs=40, seed=2)
    pairs = _draw_pairs(100, 40, np.random.default_rng(2))
    assert len(source.requested) == 2  # 40 pairs in batches of 32
    for batch, requested in zip((pairs[:32], pairs[32:]), source.requested):
        assert np.array_equal(requested, np.unique(batch))


def test_fields_and_determinism(real, groups):
    generated = _diverse(12, seed=1)
    first = compute_structural_diversity(real, generated, real_groups=groups, n_pairs=10, seed=4)
    second = compute_structural_diversity(real, generated, real_groups=groups, n_pairs=10, seed=4)
    assert dict(first.statistics) == dict(second.statistics)
    assert set(first.statistics) == set(STATISTICS)
    assert first.statistic == "generated_msssim"
    assert first.baseline == first.statistics["real_msssim"]
    assert first.params["data_range"] == 255
    low, high = first.interval
    assert low < first.value < high


def test_rejects_bad_input(real):
    with pytest.raises(ValueError, match="n_pairs must be an integer >= 10; got 5"):
        compute_structural_diversity(real, real, n_pairs=5)
    with pytest.raises(ValueError, match="generated must be an ImageSet or a uint8 array of shape \\(n, H, W\\); got list"):
        compute_structural_diversity(real, [1, 2, 3])
    with pytest.raises(ValueError, match="generated: images must be a 3-D uint8 array"):
        compute_structural_diversity(real, real.astype(np.float32))


def test_too_few_images_is_degenerate(real):
    with pytest.raises(DegenerateInputError, match="generated must contain at least 2 images"):
        compute_structural_diversity(real, real[:1], n_pairs=10)
    with pytest.raises(DegenerateInputError, match="real_groups must contain at least 2 distinct patients"):
        compute_structural_diversity(real, real, real_groups=[0] * len(real), n_pairs=10)
