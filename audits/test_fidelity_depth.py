"""Fidelity audits in depth: spectral fingerprints and outlier slices.

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_spectral_gap(audit, features):
    verdict = audit.check("spectral_gap", features=features)
    assert verdict.status != "fail", verdict.message


def test_image_outliers(audit, features):
    verdict = audit.check("image_outliers", features=features)
    assert verdict.status != "fail", verdict.message
