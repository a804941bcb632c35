"""Integrity audits: every file is usable, has the working size, and the counts are as promised."""


def test_decodable(audit, role):
    verdict = audit.check("decodable", role=role)
    assert verdict.status != "fail", verdict.message


def test_image_size(audit, role):
    verdict = audit.check("image_size", role=role)
    assert verdict.status != "fail", verdict.message


def test_image_count(audit, role):
    verdict = audit.check("image_count", role=role)
    assert verdict.status != "fail", verdict.message
