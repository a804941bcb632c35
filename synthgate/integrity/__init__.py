"""Integrity checks on one image set: Great Expectations rules on its per-image manifest."""
