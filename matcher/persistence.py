"""Saving and loading a :class:`~matcher.index.GalleryIndex`, atomically and checked.

File layout (little-endian)::

    magic        8 bytes   b"WAJAHIDX"
    version      uint32    FORMAT_VERSION
    header_len   uint32    bytes of the JSON header
    header_hash  32 bytes  sha256 of the JSON header
    header       JSON      model_tag, config, kind, count, last_template_id, saved_at,
                           payload_bytes, payload_sha256, sections [{name, dtype, shape,
                           offset, nbytes}]
    payload      sections  template_ids (N,) <i8, subject_ids (N,) <i8, rows (N, 128) <f4
                           (or u1 codes for "sq8"), accelerator (B,) u1 = faiss.serialize_index
                           bytes (HNSW graph or IVF lists; empty for flat/sq8 and untrained IVF),
                           hnsw_label_templates (L,) <i8

Every byte is covered by a checksum (header hash + payload hash), so truncation or a flipped
byte is reported as :class:`IndexCorrupt`, never loaded. ``last_template_id`` is the checkpoint
from which a loader replays templates added after the save.

Saving writes a temporary file in the same directory, flushes and fsyncs it, renames it over the
target with ``os.replace`` (atomic on POSIX) and fsyncs the directory so the rename survives a
power cut. A process killed mid-save leaves the previous file intact and a ``.<name>.*.tmp``
file behind; loading ignores those.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from matcher.config import IndexConfig
from matcher.errors import IndexConfigMismatch, IndexCorrupt, IndexFileMissing, IndexModelMismatch
from matcher.index import GalleryIndex, IndexSnapshot

MAGIC = b"WAJAHIDX"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII32s")  # magic, version, header length, header sha256
_SECTION_DTYPES = {
    "template_ids": "<i8",
    "subject_ids": "<i8",
    "rows": "<f4",  # "|u1" for sq8 codes
    "accelerator": "|u1",
    "hnsw_label_templates": "<i8",
}


def _sections(snapshot: IndexSnapshot) -> list[tuple[str, np.ndarray]]:
    rows_dtype = "|u1" if snapshot.config.kind == "sq8" else "<f4"
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


def save_index(index: GalleryIndex, path: Path | str) -> None:
    """Write ``index`` to ``path`` atomically (temp file, fsync, rename, directory fsync)."""
    target = Path(path)
    snapshot = index.snapshot()
    sections = _sections(snapshot)
    payload_hash = hashlib.sha256()
    layout: list[dict[str, Any]] = []
    offset = 0
    for name, array in sections:
        payload_hash.update(array.reshape(-1).view(np.uint8).data)
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
    header = {
        "model_tag": snapshot.model_tag,
        "config": snapshot.config.to_dict(),
        "kind": snapshot.config.kind,
        "count": int(snapshot.template_ids.shape[0]),
        "last_template_id": snapshot.last_template_id,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "payload_bytes": offset,
        "payload_sha256": payload_hash.hexdigest(),
        "sections": layout,
    }
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    prefix = _PREFIX.pack(
        MAGIC, FORMAT_VERSION, len(header_bytes), hashlib.sha256(header_bytes).digest()
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(prefix)
            handle.write(header_bytes)
            for _, array in sections:
                handle.write(array.reshape(-1).view(np.uint8).data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_index(
    path: Path | str, expected_model_tag: str, expected_config: IndexConfig
) -> GalleryIndex:
    """Load a saved index, checked end to end.

    Raises ``IndexFileMissing``, ``IndexCorrupt`` (bad magic or version, truncated, checksum
    mismatch, inconsistent header), ``IndexModelMismatch`` (templates of another model) or
    ``IndexConfigMismatch`` (another kind or structure). The runtime fields of
    ``expected_config`` (ef_search, nprobe, rerank_candidates) replace the saved ones.
    """
    source = Path(path)
    try:
        handle = source.open("rb")
    except FileNotFoundError as error:
        raise IndexFileMissing(f"no saved index at {source}") from error
    with handle:
        header = _read_header(handle, source)
        payload = handle.read(int(header["payload_bytes"]) + 1)
    if len(payload) != header["payload_bytes"]:
        raise IndexCorrupt(
            f"{source}: payload is {len(payload)} bytes, the header says "
            f"{header['payload_bytes']} (truncated or extended file)"
        )
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise IndexCorrupt(f"{source}: payload checksum mismatch")
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
    try:
        arrays = _read_sections(header, payload)
        snapshot = IndexSnapshot(
            config=saved_config,
            model_tag=found_model,
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


def _read_header(handle: Any, source: Path) -> dict[str, Any]:
    prefix = handle.read(_PREFIX.size)
    if len(prefix) != _PREFIX.size:
        raise IndexCorrupt(f"{source}: truncated before the header ({len(prefix)} bytes)")
    magic, version, header_length, header_hash = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise IndexCorrupt(f"{source}: not a Wajah index file (bad magic)")
    if version != FORMAT_VERSION:
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
    required = ("model_tag", "config", "count", "last_template_id", "payload_bytes")
    if not isinstance(header, dict) or any(key not in header for key in required):
        raise IndexCorrupt(f"{source}: header lacks required fields")
    return header


def _read_sections(header: dict[str, Any], payload: bytes) -> dict[str, np.ndarray]:
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
