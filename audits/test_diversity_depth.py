"""Diversity audits in depth: are generated slices structurally more alike than real ones?

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_structural_diversity(audit):
    verdict = audit.check("structural_diversity")
    assert verdict.status != "fail", verdict.message
