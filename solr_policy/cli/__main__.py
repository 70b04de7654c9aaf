"""``python -m solr_policy.cli``: the console script without installing it."""

from solr_policy.cli.app import main

main()
