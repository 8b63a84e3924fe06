"""The ``wajah`` command line: ``main.py`` holds the typer app and the face commands; the
other modules add their command groups to it."""
