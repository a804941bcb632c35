"""Integrity contract: format, palette, bit depth, hashes and grey levels of every file.

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_png_mode(audit, role):
    verdict = audit.check("png_mode", role=role)
    assert verdict.status != "fail", verdict.message


def test_grey_palette(audit, role):
    verdict = audit.check("grey_palette", role=role)
    assert verdict.status != "fail", verdict.message


def test_bit_depth(audit, role):
    verdict = audit.check("bit_depth", role=role)
    assert verdict.status != "fail", verdict.message


def test_unique_hashes(audit, role):
    verdict = audit.check("unique_hashes", role=role)
    assert verdict.status != "fail", verdict.message


def test_no_shared_hashes(audit, role):
    verdict = audit.check("no_shared_hashes", role=role)
    assert verdict.status != "fail", verdict.message


def test_intensity_range(audit, role):
    verdict = audit.check("intensity_range", role=role)
    assert verdict.status != "fail", verdict.message
