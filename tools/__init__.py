"""Regeneration tools of the source tree (not installed with the package)."""
