"""The statistical checks, one module each.

Each module has one public function ``compute_<name>(real, generated, *, ...)`` that returns a
:class:`~synthgate.result.CheckResult`, and a ``STATISTICS`` dict naming every statistic it
reports. :data:`synthgate.registry.CHECK_SPECS` lists every check the audit runs.
"""
