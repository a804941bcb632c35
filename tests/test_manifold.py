import importlib.util

import numpy as np
import pytest

from synthgate.errors import DegenerateInputError, EncoderUnavailableError
from synthgate.manifold import UMAP_MISSING, compute_manifold


def _blobs(n_real=60, n_generated=90, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, 16))
    generated = rng.normal(size=(n_generated, 16)) + shift
    return real, generated


@pytest.fixture(scope="module")
def separated_view():
    pytest.importorskip("umap", reason="the manifold view needs umap-learn")
    real, generated = _blobs(shift=6.0)
    return compute_manifold(real, generated, metric="euclidean", max_points=100, seed=3)


def test_separated_sets_land_in_separate_regions(separated_view):
    view = separated_view
    assert view.coordinates.shape == (view.n_real + view.n_generated, 2)
    assert np.all(np.isfinite(view.coordinates))

    real_points, generated_points = view.coordinates[: view.n_real], view.coordinates[view.n_real :]
    gap = np.linalg.norm(real_points.mean(axis=0) - generated_points.mean(axis=0))
    spread = max(real_points.std(axis=0).max(), generated_points.std(axis=0).max())
    assert gap > 2 * spread


def test_subsample_keeps_real_rows_first(separated_view):
    view = separated_view
    assert (view.n_real, view.n_generated) == (50, 50)
    assert len(set(view.real_rows)) == 50
    assert view.real_rows.max() < 60
    assert view.params["seed"] == 3
    assert view.params["max_points"] == 100


def test_manifold_same_seed_same_coordinates(separated_view):
    real, generated = _blobs(shift=6.0)
    again = compute_manifold(real, generated, metric="euclidean", max_points=100, seed=3)
    np.testing.assert_array_equal(again.coordinates, separated_view.coordinates)
    np.testing.assert_array_equal(again.generated_rows, separated_view.generated_rows)


def test_too_few_images_fail_loudly():
    real, generated = _blobs(n_real=9)
    with pytest.raises(DegenerateInputError, match="at least 10 real images; got 9"):
        compute_manifold(real, generated)


def test_invalid_options_name_the_parameter():
    real, generated = _blobs()
    with pytest.raises(ValueError, match="min_dist must be a number in \\[0, 1\\); got 1.5"):
        compute_manifold(real, generated, min_dist=1.5)
    with pytest.raises(ValueError, match="max_points must be an integer >= 20; got 5"):
        compute_manifold(real, generated, max_points=5)


def test_without_umap_the_error_says_what_to_install(monkeypatch):
    real, generated = _blobs()
    original = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "umap" else original(name, *a))
    with pytest.raises(EncoderUnavailableError, match="pip install umap-learn"):
        compute_manifold(real, generated)
    assert "umap-learn" in UMAP_MISSING
