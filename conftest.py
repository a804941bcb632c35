"""Project-wide pytest setup: the synthgate plugin, which is active only for ``pytest audits/``."""

pytest_plugins = ["synthgate.plugin"]
