"""Diversity audits: does the generated set repeat itself (mode collapse)?"""


def test_duplicate_rate(audit, features):
    verdict = audit.check("duplicate_rate", features=features)
    assert verdict.status != "fail", verdict.message
