"""How the record store seals what it keeps: the associated-data formats of its ciphertexts,
the template plaintext, and the chip's PNG codec.

Every ciphertext's associated data names the row it belongs to (and the sample, subject and
model), so a ciphertext copied to another row, or a template or sample re-linked to another
subject behind the store's back, fails to decrypt rather than matching as somebody else.
Changing these formats makes every stored ciphertext unreadable: they are part of the on-disk
format. Tools that seed a database directly (``benchmarks/index_recovery.py``) use them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import cv2
import numpy as np

from wajah.biometric.templates import CHIP_SIZE_PX, TEMPLATE_DIM, Template
from wajah.enrollment.crypto import RecordCipher
from wajah.enrollment.db import MODEL_TAG_MAX
from wajah.enrollment.errors import RecordDecryptionError
from wajah.enrollment.records import TemplateBatch

__all__ = [
    "TEMPLATE_BYTES",
    "TEMPLATE_DTYPE",
    "chip_associated",
    "decode_chip",
    "encode_chip",
    "image_associated",
    "open_templates",
    "read_only_vector",
    "template_associated",
    "template_plaintext",
]

TEMPLATE_DTYPE: Final = np.dtype("<f4")  # stored as float32 little-endian, 512 bytes
TEMPLATE_BYTES: Final = TEMPLATE_DIM * TEMPLATE_DTYPE.itemsize
UNIT_NORM_TOLERANCE: Final = 1e-3  # float32 rounding of a normalised 128-d vector is ~1e-7
_TEMPLATE_ASSOCIATED: Final = b"template:%d:sample:%d:subject:%d:model:%s"


def template_associated(template_id: int, sample_id: int, subject_id: int, model_tag: str) -> bytes:
    return _TEMPLATE_ASSOCIATED % (template_id, sample_id, subject_id, model_tag.encode("utf-8"))


def chip_associated(sample_id: int, subject_id: int) -> bytes:
    return b"sample-chip:%d:subject:%d" % (sample_id, subject_id)


def image_associated(sample_id: int, subject_id: int) -> bytes:
    return b"sample-image:%d:subject:%d" % (sample_id, subject_id)


def encode_chip(chip: np.ndarray) -> bytes:
    """The (150, 150, 3) uint8 RGB chip as PNG bytes; ``ValueError`` for any other array."""
    if chip.shape != (CHIP_SIZE_PX, CHIP_SIZE_PX, 3) or chip.dtype != np.uint8:
        raise ValueError(
            f"chip must be ({CHIP_SIZE_PX}, {CHIP_SIZE_PX}, 3) uint8, got {chip.shape} {chip.dtype}"
        )
    # OpenCV writes BGR; convert so the stored PNG shows true colours if ever exported.
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(chip, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("the chip could not be encoded as PNG")
    return bytes(encoded.tobytes())


def decode_chip(png: bytes) -> np.ndarray:
    """The stored PNG back as a (150, 150, 3) uint8 RGB array."""
    decoded = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise RecordDecryptionError("the stored chip is not a decodable PNG")
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def template_plaintext(template: Template) -> np.ndarray:
    """The template's vector as stored: (128,) little-endian float32, checked to be finite and
    L2-normalised; ``ValueError`` otherwise."""
    if not template.model_tag or len(template.model_tag) > MODEL_TAG_MAX:
        raise ValueError("template model_tag must be 1 to 64 characters")
    vector = np.asarray(template.vector)
    if vector.shape != (TEMPLATE_DIM,):
        raise ValueError(f"template vector must be ({TEMPLATE_DIM},), got {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise ValueError("template vector has non-finite values")
    little_endian = vector.astype(TEMPLATE_DTYPE)
    norm = float(np.linalg.norm(little_endian))
    if abs(norm - 1.0) > UNIT_NORM_TOLERANCE:
        raise ValueError(f"template vector is not L2-normalised (norm {norm:.4f})")
    return little_endian


def read_only_vector(vector: np.ndarray) -> np.ndarray:
    """A float32 copy that callers cannot change under the index's feet."""
    copy = np.array(vector, dtype=np.float32, copy=True)
    copy.flags.writeable = False
    return copy


def open_templates(cipher: RecordCipher, rows: Sequence[Any], model_tag: str) -> TemplateBatch:
    """Decrypt ``(template_id, sample_id, subject_id, ciphertext)`` rows of one model into a
    batch. The associated data is formatted here with the tag encoded once (the format of
    :func:`template_associated`): this loop runs a million times on a rebuild."""
    count = len(rows)
    tag = model_tag.encode("utf-8")
    decrypt = cipher.decrypt
    plaintexts: list[bytes] = []
    for template_id, sample_id, subject_id, ciphertext in rows:
        associated = _TEMPLATE_ASSOCIATED % (template_id, sample_id, subject_id, tag)
        try:
            plaintext = decrypt(ciphertext, associated)
        except RecordDecryptionError as error:
            raise RecordDecryptionError(f"template {template_id}: {error}") from None
        if len(plaintext) != TEMPLATE_BYTES:
            raise RecordDecryptionError(f"template {template_id}: wrong plaintext length")
        plaintexts.append(plaintext)
    vectors = (
        np.frombuffer(b"".join(plaintexts), dtype=TEMPLATE_DTYPE)
        .reshape(count, TEMPLATE_DIM)
        .astype(np.float32)
    )
    template_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=count)
    subject_ids = np.fromiter((row[2] for row in rows), dtype=np.int64, count=count)
    return TemplateBatch(template_ids, subject_ids, vectors)
