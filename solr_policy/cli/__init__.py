"""The ``solr-policy`` command: one module per command group, each a thin front that parses
options, calls the library and prints. ``main`` is the console script."""

from solr_policy.cli.common import Context
from solr_policy.cli.app import cli, main

__all__ = ["Context", "cli", "main"]
