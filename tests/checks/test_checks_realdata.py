"""The four checks on the shared lung-CT corpus, with simple stand-in features.

The real set is the patient-level ``train`` split of ``ct-real``. Two candidates are
compared with it: the ``holdout`` split (unseen patients, which should look like real data)
and ``ct-generated-dcgan-early`` (an early DCGAN checkpoint trained on the train split).
Features are computed here so that the tests do not depend on the feature extractors.
Pixel features are 4 x 4 block means (64 x 64), centred and L2-normalised. The texture
stand-in is the grey-level mean, SD, 9 percentiles and a 16-bin histogram.
"""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from synthgate.checks.duplicate_rate import compute_duplicate_rate
from synthgate.checks.nearest_real_distance import compute_nearest_real_distance
from synthgate.checks.separability_auc import compute_separability_auc
from synthgate.checks.texture_gap import compute_texture_gap

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not (DATA / "ct-real").is_dir(), reason=f"lung-CT corpus not found at {DATA}"),
]


def _load(paths):
    from PIL import Image

    return np.stack([np.asarray(Image.open(path).convert("L")) for path in paths])


def _features(images):
    """Return pixel features, texture stand-in features and SHA-256 hashes of the pixels."""
    blocks = images.reshape(len(images), 64, 4, 64, 4).mean(axis=(2, 4)).reshape(len(images), -1)
    blocks -= blocks.mean(axis=1, keepdims=True)
    pixels = (blocks / np.linalg.norm(blocks, axis=1, keepdims=True)).astype(np.float32)

    flat = images.reshape(len(images), -1).astype(np.float64)
    percentiles = np.percentile(flat, np.arange(10, 100, 10), axis=1).T
    histogram = np.stack([np.bincount(row // 16, minlength=16) for row in images.reshape(len(images), -1)])
    texture = np.hstack([flat.mean(axis=1, keepdims=True), flat.std(axis=1, keepdims=True), percentiles, histogram / flat.shape[1]])

    hashes = [hashlib.sha256(image.tobytes()).hexdigest() for image in images]
    return pixels, texture, hashes


@pytest.fixture(scope="module")
def corpus():
    with open(DATA / "ct-real" / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    split = np.array([row["split"] for row in rows])
    patients = np.array([row["patient_id"] for row in rows])
    pixels, texture, hashes = _features(_load([DATA / "ct-real" / row["file"] for row in rows]))
    generated = _features(_load(sorted((DATA / "ct-generated-dcgan-early").glob("gen_*.png"))))

    train, holdout = split == "train", split == "holdout"
    return {
        "train": (pixels[train], texture[train], [h for h, keep in zip(hashes, train) if keep]),
        "groups": patients[train],
        "holdout": (pixels[holdout], texture[holdout], [h for h, keep in zip(hashes, holdout) if keep]),
        "dcgan_early": generated,
    }


TEXTURE_NAMES = ["mean", "sd"] + [f"p{q}" for q in range(10, 100, 10)] + [f"hist{k}" for k in range(16)]


def _nearest(corpus, candidate):
    real_pixels, _, real_hashes = corpus["train"]
    pixels, _, hashes = corpus[candidate]
    return compute_nearest_real_distance(
        real_pixels, pixels, real_groups=corpus["groups"], real_pixel_hashes=real_hashes, generated_pixel_hashes=hashes
    )


def test_holdout_patients_are_not_close(corpus):
    result = _nearest(corpus, "holdout")
    low, high = result.interval
    assert low < 0.05 < high
    assert result.statistics["exact_copies"] == 0


def test_early_dcgan_is_close_to_training(corpus):
    result = _nearest(corpus, "dcgan_early")
    assert result.statistics["close_share"] > 0.3
    assert result.interval[0] > 0.05
    assert result.statistics["exact_copies"] == 0


def test_real_patients_are_not_duplicates(corpus):
    real_pixels = corpus["train"][0]
    result = compute_duplicate_rate(real_pixels, corpus["dcgan_early"][0], real_groups=corpus["groups"], exclude_same_patient=True)
    assert result.statistics["real_pair_fraction"] < 0.01
    assert result.statistics["image_fraction_excess"] > 0.3


def test_early_dcgan_separable_holdout_less(corpus):
    real_texture = corpus["train"][1]
    generated = compute_separability_auc(real_texture, corpus["dcgan_early"][1], real_groups=corpus["groups"])
    holdout = compute_separability_auc(real_texture, corpus["holdout"][1], real_groups=corpus["groups"])
    assert generated.statistics["auc"] > 0.9
    assert holdout.statistics["auc"] < generated.statistics["auc"]


def test_texture_gap_generated_beyond_holdout(corpus):
    real_texture = corpus["train"][1]
    generated = compute_texture_gap(
        real_texture, corpus["dcgan_early"][1], feature_names=TEXTURE_NAMES, real_groups=corpus["groups"]
    )
    holdout = compute_texture_gap(
        real_texture, corpus["holdout"][1], feature_names=TEXTURE_NAMES, real_groups=corpus["groups"]
    )
    assert generated.statistics["median_abs_smd_excess"] > 0
    assert holdout.statistics["median_abs_smd_excess"] < generated.statistics["median_abs_smd_excess"]
