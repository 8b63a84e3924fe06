"""Saving and loading a :class:`~wajah.matcher.index.GalleryIndex`, atomically, checked and sealed.

File layout (little-endian)::

    magic        8 bytes   b"WAJAHIDX"
    version      uint32    FORMAT_VERSION
    header_len   uint32    bytes of the JSON header
    header_hash  32 bytes  sha256 of the JSON header
    header       JSON      model_tag, config, kind, count, last_template_id, saved_at,
                           payload_bytes, payload_sha256, sections [{name, dtype, shape,
                           offset, nbytes}], sealed; and when sealed: chunk_bytes, chunk_count,
                           seal_id (16 random bytes, hex)
    payload      sections  template_ids (N,) <i8, subject_ids (N,) <i8, rows (N, 128) <f4
                           (or u1 codes for "sq8"), accelerator (B,) u1 = faiss.serialize_index
                           bytes (HNSW graph or IVF lists; empty for flat/sq8 and untrained IVF),
                           hnsw_label_templates (L,) <i8

Sealed files (``save_index(..., cipher=...)``): the rows, the accelerator (an HNSW graph holds
the vectors too) and the ids are biometric data, so with a cipher the payload is written as
``chunk_count`` frames ``[ciphertext_len uint32][ciphertext]``, each the encryption of the next
``chunk_bytes`` of the plaintext payload (the last one shorter; an empty payload is one empty
chunk, so even an empty index authenticates its header). Chunking keeps every AEAD message far
below the 2**31 - 1 bytes `cryptography`'s AES-GCM accepts (10M float templates are 5 GB) and
lets saving and loading stream. Each chunk's associated data is
``CHUNK_ASSOCIATED_PREFIX | header_hash | chunk_index u64 | chunk_count u64``: the header hash
authenticates the header (model, config, counts, ``seal_id``), so a chunk that is reordered,
dropped, or copied from another file fails to decrypt, as does a header edited to match. The
plaintext payload checksum is still verified after decryption. The header itself stays in clear:
it holds counts and structure, never a template.

Every byte is covered by a checksum (header hash + payload hash) and, when sealed, by the AEAD
tags, so truncation or a flipped byte is reported as :class:`IndexCorrupt`, never loaded.
``last_template_id`` is the checkpoint from which a loader replays templates added after the
save; ``change_seq`` (optional, an opaque number for the caller) is the last entry of the
caller's change log the saved index had applied, so a loader replays the log from there.
Version 1 files (the same layout, never sealed) are still read when no cipher is asked for;
a loader given a cipher refuses any unsealed file with :class:`IndexNotSealed`, so a
service that seals never trusts (or keeps using) a plaintext file an attacker could have
planted or an older version left behind: it rebuilds instead.

Saving writes a temporary file in the same directory, flushes and fsyncs it, renames it over the
target with ``os.replace`` (atomic on POSIX) and fsyncs the directory so the rename survives a
power cut. A process killed mid-save leaves the previous file intact and a ``.<name>.*.tmp``
file behind (sealed if the save was); loading ignores those.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import struct
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from wajah.matcher.atomic_files import atomic_write
from wajah.matcher.config import IndexConfig
from wajah.matcher.errors import (
    IndexConfigMismatch,
    IndexCorrupt,
    IndexFileError,
    IndexFileMissing,
    IndexModelMismatch,
)
from wajah.matcher.index import GalleryIndex, IndexSnapshot

MAGIC = b"WAJAHIDX"
FORMAT_VERSION = 2  # 2: optional sealing ("sealed" in the header); 1: always plaintext
READABLE_VERSIONS = frozenset({1, 2})
_PREFIX = struct.Struct("<8sII32s")  # magic, version, header length, header sha256
_SECTION_DTYPES = {
    "template_ids": "<i8",
    "subject_ids": "<i8",
    "rows": "<f4",  # "|u1" for sq8 codes
    "accelerator": "|u1",
    "hnsw_label_templates": "<i8",
}

# Plaintext bytes per sealed chunk: small enough to stream with little memory, large enough that
# the per-chunk overhead (a 4-byte length, the cipher's nonce and tag) is noise.
CHUNK_BYTES = 16 * 1024 * 1024
# AES-GCM in `cryptography` refuses messages over 2**31 - 1 bytes; stay well under it.
MAX_CHUNK_BYTES = 1 << 30
# A ciphertext may exceed its plaintext by the cipher's framing (RecordCipher: 1 version byte,
# 12-byte nonce, 16-byte tag); a frame claiming more than this is corrupt, not a reason to read
# gigabytes.
MAX_SEAL_OVERHEAD_BYTES = 4096
CHUNK_ASSOCIATED_PREFIX = b"wajah-index-chunk:v2:"  # part of the format: changing it breaks files
_CHUNK_FRAME = struct.Struct("<I")  # ciphertext length
_CHUNK_POSITION = struct.Struct("<QQ")  # chunk index, chunk count


class PayloadCipher(Protocol):
    """An authenticated cipher (AEAD): ``decrypt`` must raise when the ciphertext was altered,
    made under another key or with other associated data. ``enrollment.crypto.RecordCipher``
    fits; the matcher does not import it (the matcher sits below enrollment)."""

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes, associated: bytes) -> bytes: ...


class IndexNotSealed(IndexFileError):
    """A cipher was given but the file holds its payload in plaintext (written without a
    cipher, or by format version 1). Refused rather than trusted: rebuild and save sealed."""


def _sections(snapshot: IndexSnapshot) -> list[tuple[str, np.ndarray]]:
    # Float templates, or the 8-bit codes of a store that keeps no floats ("sq8").
    rows_dtype = "|u1" if snapshot.rows.dtype == np.uint8 else "<f4"
    arrays = {
        "template_ids": snapshot.template_ids,
        "subject_ids": snapshot.subject_ids,
        "rows": snapshot.rows,
        "accelerator": snapshot.accelerator,
        "hnsw_label_templates": snapshot.hnsw_label_templates,
    }
    dtypes = dict(_SECTION_DTYPES, rows=rows_dtype)
    return [
        (name, np.ascontiguousarray(array, dtype=np.dtype(dtypes[name])))
        for name, array in arrays.items()
    ]


def save_index(
    index: GalleryIndex,
    path: Path | str,
    cipher: PayloadCipher | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    change_seq: int | None = None,
) -> None:
    """Write ``index`` to ``path`` atomically (temp file, fsync, rename, directory fsync).

    With ``cipher`` the payload is sealed in chunks of ``chunk_bytes`` plaintext bytes, encrypted
    one at a time as they are written: memory beyond the snapshot is about two chunks.
    """
    if cipher is not None and not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk_bytes must be in 1..{MAX_CHUNK_BYTES}, got {chunk_bytes}")
    target = Path(path)
    snapshot = index.snapshot()
    sections = _sections(snapshot)
    views = [array.reshape(-1).view(np.uint8).data for _, array in sections]
    payload_hash = hashlib.sha256()
    layout: list[dict[str, Any]] = []
    offset = 0
    for (name, array), view in zip(sections, views, strict=True):
        payload_hash.update(view)
        layout.append(
            {
                "name": name,
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "offset": offset,
                "nbytes": int(array.nbytes),
            }
        )
        offset += int(array.nbytes)
    header: dict[str, Any] = {
        "model_tag": snapshot.model_tag,
        "config": snapshot.config.to_dict(),
        "kind": snapshot.config.kind,
        "count": int(snapshot.template_ids.shape[0]),
        "last_template_id": snapshot.last_template_id,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "payload_bytes": offset,
        "payload_sha256": payload_hash.hexdigest(),
        "sections": layout,
        "sealed": cipher is not None,
    }
    if change_seq is not None:
        header["change_seq"] = int(change_seq)
    if cipher is not None:
        header["chunk_bytes"] = chunk_bytes
        header["chunk_count"] = _chunk_count(offset, chunk_bytes)
        header["seal_id"] = secrets.token_hex(16)  # no two files share a header hash
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    header_hash = hashlib.sha256(header_bytes).digest()
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), header_hash)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, "wb", sync_directory=True) as handle:
        handle.write(prefix)
        handle.write(header_bytes)
        if cipher is None:
            for view in views:
                handle.write(view)
        else:
            _write_sealed(handle, views, cipher, header_hash, chunk_bytes, header)


def _chunk_count(payload_bytes: int, chunk_bytes: int) -> int:
    return max(1, -(-payload_bytes // chunk_bytes))  # at least one, so the header is sealed


def _chunk_associated(header_hash: bytes, chunk_index: int, chunk_count: int) -> bytes:
    return CHUNK_ASSOCIATED_PREFIX + header_hash + _CHUNK_POSITION.pack(chunk_index, chunk_count)


def _plaintext_chunks(views: Sequence[memoryview], chunk_bytes: int) -> Iterator[bytes]:
    """The concatenation of ``views`` cut into ``chunk_bytes`` pieces (the last shorter; one
    empty piece for an empty payload), copying one chunk at a time."""
    pending = bytearray()
    produced = False
    for view in views:
        position = 0
        while position < len(view):
            take = min(chunk_bytes - len(pending), len(view) - position)
            pending += view[position : position + take]
            position += take
            if len(pending) == chunk_bytes:
                yield bytes(pending)
                produced = True
                pending.clear()
    if pending or not produced:
        yield bytes(pending)


def _write_sealed(
    handle: IO[bytes],
    views: Sequence[memoryview],
    cipher: PayloadCipher,
    header_hash: bytes,
    chunk_bytes: int,
    header: dict[str, Any],
) -> None:
    chunk_count = int(header["chunk_count"])
    written = 0
    for chunk_index, plaintext in enumerate(_plaintext_chunks(views, chunk_bytes)):
        ciphertext = cipher.encrypt(
            plaintext, _chunk_associated(header_hash, chunk_index, chunk_count)
        )
        if len(ciphertext) > len(plaintext) + MAX_SEAL_OVERHEAD_BYTES:
            raise ValueError("the cipher's overhead exceeds MAX_SEAL_OVERHEAD_BYTES")
        handle.write(_CHUNK_FRAME.pack(len(ciphertext)))
        handle.write(ciphertext)
        written += 1
    if written != chunk_count:  # a bug here would write a file no loader accepts
        raise RuntimeError(f"wrote {written} sealed chunks, the header says {chunk_count}")


def load_index(
    path: Path | str,
    expected_model_tag: str,
    expected_config: IndexConfig,
    cipher: PayloadCipher | None = None,
) -> GalleryIndex:
    """Load a saved index, checked end to end.

    Raises ``IndexFileMissing``, ``IndexCorrupt`` (bad magic or version, truncated, checksum
    mismatch, inconsistent header; when sealed: a chunk that fails to decrypt, i.e. another
    key, tampering, reordered, dropped or foreign chunks; or a sealed file and no cipher),
    ``IndexNotSealed`` (a cipher was given and the file is plaintext), ``IndexModelMismatch``
    (templates of another model) or ``IndexConfigMismatch`` (another kind or structure). The
    runtime fields of ``expected_config`` (ef_search, nprobe, rerank_candidates) replace the
    saved ones. Model and structure are checked before the payload is read, so a model upgrade
    does not first decrypt gigabytes it then throws away.
    """
    source = Path(path)
    try:
        handle = source.open("rb")
    except FileNotFoundError as error:
        raise IndexFileMissing(f"no saved index at {source}") from error
    with handle:
        header, header_hash = _read_header(handle, source)
        sealed = header["sealed"]
        if cipher is not None and not sealed:
            raise IndexNotSealed(f"{source}: the payload is not sealed and sealing is required")
        if cipher is None and sealed:
            raise IndexCorrupt(f"{source}: the payload is sealed and no cipher was given")
        saved_config = _check_model_and_structure(
            header, source, expected_model_tag, expected_config
        )
        if cipher is None:
            payload, payload_sha256 = _read_plaintext_payload(handle, source, header)
        else:
            payload, payload_sha256 = _read_sealed_payload(
                handle, source, header, header_hash, cipher
            )
    if payload_sha256 != header.get("payload_sha256"):
        raise IndexCorrupt(f"{source}: payload checksum mismatch")
    try:
        arrays = _read_sections(header, payload)
        snapshot = IndexSnapshot(
            config=saved_config,
            model_tag=str(header["model_tag"]),
            last_template_id=int(header["last_template_id"]),
            template_ids=arrays["template_ids"],
            subject_ids=arrays["subject_ids"],
            rows=arrays["rows"],
            accelerator=arrays["accelerator"],
            hnsw_label_templates=arrays["hnsw_label_templates"],
        )
        if snapshot.template_ids.shape[0] != header["count"]:
            raise ValueError("count differs from the template id section")
        return GalleryIndex.from_snapshot(snapshot, expected_config)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        # checksums passed, so this is a file written by a faulty or foreign writer
        raise IndexCorrupt(f"{source}: inconsistent index contents ({error})") from error


def _check_model_and_structure(
    header: dict[str, Any], source: Path, expected_model_tag: str, expected_config: IndexConfig
) -> IndexConfig:
    found_model = str(header["model_tag"])
    if found_model != expected_model_tag:
        raise IndexModelMismatch(
            f"{source} holds {found_model} templates, expected {expected_model_tag}",
            expected=expected_model_tag,
            found=found_model,
        )
    try:
        saved_config = IndexConfig.from_dict(header["config"])
    except (TypeError, ValueError) as error:
        raise IndexCorrupt(f"{source}: unreadable index config") from error
    if saved_config.structural() != expected_config.structural():
        raise IndexConfigMismatch(
            f"{source} was built as {saved_config.structural()}, "
            f"expected {expected_config.structural()}"
        )
    return saved_config


def saved_change_seq(path: Path | str) -> int | None:
    """The ``change_seq`` recorded by :func:`save_index`, or None (none recorded, or no
    readable file). Reads the checked header only; :func:`load_index` authenticates it."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            header, _ = _read_header(handle, source)
    except (OSError, IndexFileError):
        return None
    value = header.get("change_seq")
    return int(value) if isinstance(value, int) else None


def _read_header(handle: io.BufferedReader, source: Path) -> tuple[dict[str, Any], bytes]:
    """The checked JSON header (with ``sealed`` always present) and its sha256."""
    prefix = handle.read(_PREFIX.size)
    if len(prefix) != _PREFIX.size:
        raise IndexCorrupt(f"{source}: truncated before the header ({len(prefix)} bytes)")
    magic, version, header_length, header_hash = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise IndexCorrupt(f"{source}: not a Wajah index file (bad magic)")
    if version not in READABLE_VERSIONS:
        raise IndexCorrupt(f"{source}: unsupported format version {version}")
    header_bytes = handle.read(header_length)
    if len(header_bytes) != header_length:
        raise IndexCorrupt(f"{source}: truncated inside the header")
    if hashlib.sha256(header_bytes).digest() != header_hash:
        raise IndexCorrupt(f"{source}: header checksum mismatch")
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IndexCorrupt(f"{source}: unreadable header") from error
    required: tuple[str, ...] = (
        "model_tag",
        "config",
        "count",
        "last_template_id",
        "payload_bytes",
    )
    if version >= 2:
        required += ("sealed",)
    if not isinstance(header, dict) or any(key not in header for key in required):
        raise IndexCorrupt(f"{source}: header lacks required fields")
    if version == 1:
        header["sealed"] = False  # version 1 had no sealing
    if not isinstance(header["sealed"], bool):
        raise IndexCorrupt(f"{source}: header field 'sealed' is not a boolean")
    payload_bytes = header["payload_bytes"]
    if not isinstance(payload_bytes, int) or payload_bytes < 0:
        raise IndexCorrupt(f"{source}: header field 'payload_bytes' is not a size")
    return header, header_hash


def _read_plaintext_payload(
    handle: io.BufferedReader, source: Path, header: dict[str, Any]
) -> tuple[bytearray, str]:
    expected = int(header["payload_bytes"])
    payload = bytearray(expected)
    received = handle.readinto(payload)
    if received != expected or handle.read(1):
        raise IndexCorrupt(
            f"{source}: payload is {'shorter' if received != expected else 'longer'} than the "
            f"{expected} bytes the header says (truncated or extended file)"
        )
    return payload, hashlib.sha256(payload).hexdigest()


def _read_sealed_payload(
    handle: io.BufferedReader,
    source: Path,
    header: dict[str, Any],
    header_hash: bytes,
    cipher: PayloadCipher,
) -> tuple[bytearray, str]:
    """Decrypt chunk by chunk into one preallocated buffer (no second full copy)."""
    payload_bytes = int(header["payload_bytes"])
    chunk_bytes = header.get("chunk_bytes")
    chunk_count = header.get("chunk_count")
    if (
        not isinstance(chunk_bytes, int)
        or not isinstance(chunk_count, int)
        or not 0 < chunk_bytes <= MAX_CHUNK_BYTES
        or chunk_count != _chunk_count(payload_bytes, chunk_bytes)
    ):
        raise IndexCorrupt(f"{source}: inconsistent sealing fields in the header")
    payload = bytearray(payload_bytes)
    digest = hashlib.sha256()
    offset = 0
    for chunk_index in range(chunk_count):
        frame = handle.read(_CHUNK_FRAME.size)
        if len(frame) != _CHUNK_FRAME.size:
            raise IndexCorrupt(f"{source}: truncated before sealed chunk {chunk_index}")
        (ciphertext_length,) = _CHUNK_FRAME.unpack(frame)
        plaintext_length = min(chunk_bytes, payload_bytes - offset)
        if ciphertext_length > plaintext_length + MAX_SEAL_OVERHEAD_BYTES:
            raise IndexCorrupt(f"{source}: sealed chunk {chunk_index} has an impossible length")
        ciphertext = handle.read(ciphertext_length)
        if len(ciphertext) != ciphertext_length:
            raise IndexCorrupt(f"{source}: truncated inside sealed chunk {chunk_index}")
        try:
            plaintext = cipher.decrypt(
                ciphertext, _chunk_associated(header_hash, chunk_index, chunk_count)
            )
        except Exception as error:  # the cipher's own error type; the matcher cannot name it
            raise IndexCorrupt(
                f"{source}: sealed chunk {chunk_index} failed authentication (another key, "
                "altered, reordered, dropped or from another file)"
            ) from error
        if len(plaintext) != plaintext_length:
            raise IndexCorrupt(f"{source}: sealed chunk {chunk_index} has the wrong length")
        payload[offset : offset + plaintext_length] = plaintext
        digest.update(plaintext)
        offset += plaintext_length
        del plaintext, ciphertext
    if handle.read(1):
        raise IndexCorrupt(f"{source}: data after the last sealed chunk (extended file)")
    return payload, digest.hexdigest()


def _read_sections(header: dict[str, Any], payload: bytearray) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for section in header["sections"]:
        name = section["name"]
        if name not in _SECTION_DTYPES:
            raise ValueError(f"unknown section {name!r}")
        dtype = np.dtype(section["dtype"])
        shape = tuple(int(size) for size in section["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if count * dtype.itemsize != section["nbytes"]:
            raise ValueError(f"section {name} size does not match its shape")
        array = np.frombuffer(payload, dtype=dtype, count=count, offset=int(section["offset"]))
        arrays[name] = array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)
    missing = set(_SECTION_DTYPES) - set(arrays)
    if missing:
        raise ValueError(f"missing sections {sorted(missing)}")
    return arrays
