"""The Great Expectations contract on the per-image manifest, on crafted files."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgate.audit import AuditSession
from synthgate.cache import FeatureCache
from synthgate.config import folder_dataset, load_config

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "fixtures" / "demo"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    real = root / "real"
    shutil.copytree(DEMO / "real", real)
    generated = root / "generated"
    generated.mkdir()
    sources = sorted((DEMO / "generated").glob("*.png"))
    for source in sources[:6]:
        shutil.copyfile(source, generated / source.name)
    grey = np.asarray(Image.open(sources[0]).convert("L"))

    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(generated / "rgb.png")
    colour = Image.fromarray(grey).convert("P")
    palette = [value for index in range(256) for value in (index, 255 - index, index // 2)]
    colour.putpalette(palette)
    colour.save(generated / "colour_palette.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(generated / "deep.png")
    shutil.copyfile(sources[1], generated / "repeat.png")
    shutil.copyfile(sorted(real.rglob("*.png"))[0], generated / "leaked.png")
    dark = (grey // 4).astype(np.uint8)
    dark[100:160, 100:160] = 200
    Image.fromarray(dark).save(generated / "dark.png")

    dataset = folder_dataset(real, generated, groups="folder")
    config = load_config(REPO / "thresholds.toml")
    return AuditSession(dataset, config, cache=FeatureCache(root / "cache"))


def _flagged(verdict):
    return {row["file"] for row in verdict.result.evidence.table}


def test_png_mode_flags_rgb(session):
    verdict = session.run("png_mode", role="generated")
    assert verdict.status == "fail"
    assert "rgb.png" in _flagged(verdict)
    assert "deep.png" in _flagged(verdict)


def test_grey_palette_flags_colour_palette(session):
    verdict = session.run("grey_palette", role="generated")
    assert verdict.status == "fail"
    assert _flagged(verdict) == {"colour_palette.png"}


def test_bit_depth_flags_16_bit(session):
    verdict = session.run("bit_depth", role="generated")
    assert verdict.status == "fail"
    assert _flagged(verdict) == {"deep.png"}


def test_unique_hashes_flags_both_copies(session):
    verdict = session.run("unique_hashes", role="generated")
    assert verdict.status == "fail"
    assert len(_flagged(verdict)) == 2
    assert "repeat.png" in _flagged(verdict)


def test_no_shared_hashes_flags_leaked_file(session):
    verdict = session.run("no_shared_hashes", role="generated")
    assert verdict.status == "fail"
    assert _flagged(verdict) == {"leaked.png"}


def test_intensity_range_flags_dark_slice(session):
    verdict = session.run("intensity_range", role="generated")
    assert verdict.status == "warn"
    assert "dark.png" in _flagged(verdict)
    assert verdict.result.params["min_value"] > 0


def test_real_set_meets_contract(session):
    for check in ("png_mode", "grey_palette", "bit_depth", "unique_hashes"):
        verdict = session.run(check, role="real")
        assert verdict.status == "pass", verdict.message


def test_manifest_lists_every_file(session):
    manifest = session.manifest("generated")
    assert len(manifest) == 12
    assert manifest["decodable"].all()
    assert set(manifest["png_mode"]) >= {"P", "RGB", "L"}


def test_image_count_compares_usable_images(session):
    from dataclasses import replace

    counted = AuditSession(
        replace(session.dataset, expected_counts={"generated": 13, "real": 52}),
        session.config,
        cache=session.cache,
    )
    generated = counted.run("image_count", role="generated")
    real = counted.run("image_count", role="real")
    assert generated.status == "fail"
    assert generated.result.statistics["count"] == 12
    assert generated.result.statistics["count_error"] == 1
    assert real.status == "pass"


def test_decodable_lists_reason(tmp_path):
    real = tmp_path / "real"
    shutil.copytree(DEMO / "real", real)
    generated = tmp_path / "generated"
    shutil.copytree(DEMO / "generated", generated)
    (generated / "empty.png").write_bytes(b"")
    dataset = folder_dataset(real, generated, groups="folder")
    counted = AuditSession(dataset, load_config(REPO / "thresholds.toml"), cache=FeatureCache(None))

    verdict = counted.run("decodable", role="generated")

    assert verdict.status == "fail"
    assert verdict.result.statistics["unexpected_count"] == 1
    row = verdict.result.evidence.table[0]
    assert row["file"] == "empty.png"
    assert "empty file" in row["reason"]
