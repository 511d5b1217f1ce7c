"""Maintainer tools, run as modules: ``python -m tools.make_workflows``, ``python -m tools.snapshot_schemas URL``."""
