"""Wajah's matcher: the 1:N gallery index, its persistence, 1:1 decisions and thresholds.

Knows FAISS and numpy, never HTTP, SQL or the settings module (import-linter, pyproject.toml).
"""
