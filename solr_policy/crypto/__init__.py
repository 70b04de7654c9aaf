"""Certificates (SMKI Organisation Certificates) and XML signature verification."""
