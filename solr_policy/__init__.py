"""solr-policy: the policy engine guarding the SoLR Contingency User Role (SEC MP134B)."""

__version__ = "0.1.0"
