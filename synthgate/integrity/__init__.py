"""Integrity checks on one image set: every file decodes, has the working size, and the count is as expected."""
