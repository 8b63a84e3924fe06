"""Index kinds as plug-ins: one module per kind, each an :class:`Accelerator`, chosen by name.

==========  =====================================  ==========================================
kind        module                                 what it adds to the row store
==========  =====================================  ==========================================
``flat``    :mod:`wajah.matcher.accelerators.flat`       nothing: exact search over float32 rows
``sq8``     :mod:`wajah.matcher.accelerators.sq8`        8-bit codes instead of floats, exhaustive
``hnsw``    :mod:`wajah.matcher.accelerators.hnsw`       a FAISS HNSW graph answering in rows
``ivf``     :mod:`wajah.matcher.accelerators.ivf`        FAISS inverted lists of float vectors
``ivfpq``   :mod:`wajah.matcher.accelerators.ivfpq`      inverted lists of 4-bit PQ codes (LDA space)
==========  =====================================  ==========================================

A new backend is one more module with an :class:`Accelerator` subclass, registered here with
:func:`register` (and its name added to ``matcher.config.IndexKind`` so configs accept it).
"""

from __future__ import annotations

from wajah.matcher.accelerators.base import Accelerator, AcceleratorState, GalleryRows
from wajah.matcher.accelerators.flat import ExactSearch
from wajah.matcher.accelerators.hnsw import HnswAccelerator
from wajah.matcher.accelerators.ivf import IvfAccelerator
from wajah.matcher.accelerators.ivfpq import IvfPqAccelerator
from wajah.matcher.accelerators.sq8 import Sq8Search

__all__ = [
    "ACCELERATORS",
    "Accelerator",
    "AcceleratorState",
    "ExactSearch",
    "GalleryRows",
    "HnswAccelerator",
    "IvfAccelerator",
    "IvfPqAccelerator",
    "Sq8Search",
    "accelerator_class",
    "register",
]

ACCELERATORS: dict[str, type[Accelerator]] = {}  # kind name -> its accelerator class


def register(accelerator: type[Accelerator]) -> type[Accelerator]:
    """Make ``accelerator`` the implementation of its ``kind``."""
    if accelerator.kind in ACCELERATORS:
        raise ValueError(f"index kind {accelerator.kind!r} is registered twice")
    ACCELERATORS[accelerator.kind] = accelerator
    return accelerator


def accelerator_class(kind: str) -> type[Accelerator]:
    """The accelerator class registered for ``kind``; ``ValueError`` for an unknown kind."""
    try:
        return ACCELERATORS[kind]
    except KeyError:
        raise ValueError(f"no accelerator registered for index kind {kind!r}") from None


for _builtin in (ExactSearch, Sq8Search, HnswAccelerator, IvfAccelerator, IvfPqAccelerator):
    register(_builtin)
