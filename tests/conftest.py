"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# The shared lung-CT corpus sits next to the repository; tests that need it are marked realdata.
REAL_DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def real_data_dir() -> Path:
    """The shared lung-CT corpus; skips the test when it is absent."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real lung-CT corpus not found at {REAL_DATA_DIR.resolve()}")
    return REAL_DATA_DIR.resolve()


@pytest.fixture(scope="session")
def pixel_split():
    """Pixel features of the corpus's train split, its holdout and the holdout rotated by 90 degrees.

    Returns a dict with ``train``, ``holdout``, ``rotated`` (feature matrices) and ``groups``
    (integer-coded patient of each train row). Skips the test when the corpus is absent.
    """
    import csv

    import numpy as np
    from PIL import Image

    from synthgate.checks._validation import validate_groups
    from synthgate.features import get_extractor

    split_file = REAL_DATA_DIR / "ct-real" / "split.csv"
    if not split_file.is_file():
        pytest.skip(f"lung-CT corpus not found at {REAL_DATA_DIR.resolve()}")
    with open(split_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    images = np.stack([np.asarray(Image.open(REAL_DATA_DIR / "ct-real" / row["file"]).convert("L")) for row in rows])
    split = np.array([row["split"] for row in rows])
    patients = np.array([row["patient_id"] for row in rows])

    extractor = get_extractor("pixels")
    train = extractor.transform(images[split == "train"])
    holdout_images = images[split == "holdout"]
    return {
        "train": train,
        "holdout": extractor.transform(holdout_images),
        "rotated": extractor.transform(np.rot90(holdout_images, axes=(1, 2)).copy()),
        "groups": validate_groups(patients[split == "train"], len(train)),
    }
