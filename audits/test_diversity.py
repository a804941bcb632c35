"""Diversity audits: does the generated set repeat itself (mode collapse)?

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_duplicate_rate(audit, features):
    verdict = audit.check("duplicate_rate", features=features)
    assert verdict.status != "fail", verdict.message


def test_coverage(audit, features):
    verdict = audit.check("coverage", features=features)
    assert verdict.status != "fail", verdict.message
