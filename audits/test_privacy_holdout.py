"""Privacy audits that compare the generated set with the training set and, where given, a holdout set.

A holdout is a set of real images NOT used to train the generator. When the dataset has none, the
checks that need one are skipped with a reason that names what to add.

PYTEST_DONT_REWRITE: the assertion message alone explains a verdict.
"""


def test_copy_detection(audit, features):
    verdict = audit.check("copy_detection", features=features)
    assert verdict.status != "fail", verdict.message


def test_membership_inference(audit, features):
    verdict = audit.check("membership_inference", features=features)
    assert verdict.status != "fail", verdict.message


def test_dcr_holdout(audit, features):
    verdict = audit.check("dcr_holdout", features=features)
    assert verdict.status != "fail", verdict.message


def test_data_copying(audit, features):
    verdict = audit.check("data_copying", features=features)
    assert verdict.status != "fail", verdict.message


def test_authenticity(audit, features):
    verdict = audit.check("authenticity", features=features)
    assert verdict.status != "fail", verdict.message


def test_patient_exposure(audit, features):
    verdict = audit.check("patient_exposure", features=features)
    assert verdict.status != "fail", verdict.message
