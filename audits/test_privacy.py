"""Privacy audits: does the generated set reproduce the real images it was trained on?

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_nearest_real_distance(audit, features):
    verdict = audit.check("nearest_real_distance", features=features)
    assert verdict.status != "fail", verdict.message
