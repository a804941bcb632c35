"""Integrity audits: every file is usable, has the working size, and the counts are as promised.

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_decodable(audit, role):
    verdict = audit.check("decodable", role=role)
    assert verdict.status != "fail", verdict.message


def test_image_size(audit, role):
    verdict = audit.check("image_size", role=role)
    assert verdict.status != "fail", verdict.message


def test_image_count(audit, role):
    verdict = audit.check("image_count", role=role)
    assert verdict.status != "fail", verdict.message
