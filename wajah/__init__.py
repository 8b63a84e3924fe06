"""Wajah: biometric identity verification for immigration offices.

The installed distribution has this one top-level package. Its sub-packages are the
repository's top-level folders (``biometric``, ``matcher``, ``enrollment``, ``api``,
``benchmarks``), which this folder links to, so the source tree keeps its layout while
nothing but ``wajah`` is put into site-packages.
"""
