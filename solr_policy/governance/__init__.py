"""Governance: the MP134B gates around the SoLR Contingency User Role."""
