import numpy as np
import pytest

from synthgate.groups import infer_groups


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_chains_neighbours_into_one_group():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 50))
    volume_a = [base[0] + 0.05 * step * rng.normal(size=50) for step in range(4)]
    volume_b = [base[1] + 0.05 * step * rng.normal(size=50) for step in range(3)]
    groups = infer_groups(_unit(volume_a + volume_b), min_similarity=0.9)
    assert len(set(groups[:4])) == 1
    assert len(set(groups[4:])) == 1
    assert groups[0] != groups[4]


def test_labels_follow_first_appearance():
    pixels = _unit(np.eye(3))
    assert infer_groups(pixels) == ("inferred-0", "inferred-1", "inferred-2")


def test_blocks_match_single_pass(monkeypatch):
    import synthgate.groups as module

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 20))
    pixels = _unit(np.repeat(centres, 30, axis=0) + 0.01 * rng.normal(size=(150, 20)))
    whole = infer_groups(pixels)
    monkeypatch.setattr(module, "_BLOCK_ROWS", 7)
    assert infer_groups(pixels) == whole
    assert len(set(whole)) == 5


def test_invalid_similarity_rejected():
    with pytest.raises(ValueError, match=r"min_similarity must be in \(0, 1\]; got 1.5"):
        infer_groups(_unit(np.eye(2)), min_similarity=1.5)
