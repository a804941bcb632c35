"""Fidelity audits: can a classifier or a statistic separate the generated set from the real one?

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_separability_auc(audit, features):
    verdict = audit.check("separability_auc", features=features)
    assert verdict.status != "fail", verdict.message


def test_texture_gap(audit, features):
    verdict = audit.check("texture_gap", features=features)
    assert verdict.status != "fail", verdict.message


def test_distribution_distance(audit, features):
    verdict = audit.check("distribution_distance", features=features)
    assert verdict.status != "fail", verdict.message
