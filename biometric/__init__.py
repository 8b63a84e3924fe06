"""Wajah's face engine: image bytes in, faces, quality reports and templates out.

Pure: no web, database or settings imports (enforced by import-linter, see pyproject.toml).
"""
