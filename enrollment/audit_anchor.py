"""The audit chain's anchor outside the database: the newest record's id and hash, signed.

The hash chain (``audit.py``) finds an edited or deleted record, but somebody with write access
to the database alone can delete the newest records and set the chain head back to the last
one kept: the shortened chain is consistent. The anchor is a small file in the data directory,
rewritten after every append with the new head's id and hash and an HMAC-SHA256 under a key
derived from the records key (which never enters the database). ``verify_chain`` then finds a
chain that ends before its anchor, or whose record at the anchored id has another hash.

The anchor only moves forward: several processes append to one database, and each writes
the anchor under an exclusive ``flock``, keeping the newer of the file's and its own head. It is
not fsynced: after a power cut it may lag the database by the last appends (never lead it),
which weakens the check for those records only and never raises a false alarm.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wajah.enrollment.errors import AuditChainCorrupt

ANCHOR_FORMAT: Final = 1
_KEY_LABEL: Final = b"wajah/audit-chain-anchor/v1"  # domain separation from the records' AES key


def anchor_key(records_key: bytes) -> bytes:
    """The anchor's HMAC key, derived from the records key (HMAC as a PRF, RFC 2104)."""
    return hmac.new(records_key, _KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class AnchoredHead:
    last_id: int
    last_hash: str


class ChainAnchor:
    """The anchor file at ``path``. Safe to share between threads and processes."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key

    def _mac(self, last_id: int, last_hash: str) -> str:
        message = f"{ANCHOR_FORMAT}:{last_id}:{last_hash}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        descriptor = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def rejected(self) -> list[Path]:
        """Anchor files that failed their signature and were set aside by an append."""
        return sorted(self.path.parent.glob(self.path.name + ".rejected-*"))

    def read(self) -> AnchoredHead | None:
        """The anchored head, None when there is no anchor yet; :class:`AuditChainCorrupt`
        when the file is not one this key signed."""
        try:
            document = json.loads(self.path.read_text())
            last_id, last_hash, mac = (
                int(document["last_id"]),
                str(document["last_hash"]),
                str(document["mac"]),
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            raise AuditChainCorrupt(f"the audit chain anchor {self.path} is unreadable") from error
        if not hmac.compare_digest(mac, self._mac(last_id, last_hash)):
            raise AuditChainCorrupt(
                f"the audit chain anchor {self.path} was not signed with this records key "
                "(altered, or from another installation)"
            )
        return AnchoredHead(last_id, last_hash)

    def advance(self, last_id: int, last_hash: str) -> None:
        """Anchor the head ``last_id`` / ``last_hash`` unless a newer one is anchored."""
        with self._locked():
            try:
                current = self.read()
            except AuditChainCorrupt:
                # Appending must not stop on it, and overwriting it would hide it: keep the
                # file aside as evidence, which verify_chain reports from then on.
                self.path.replace(
                    self.path.with_name(f"{self.path.name}.rejected-{time.time_ns()}")
                )
                current = None
            if current is not None and current.last_id >= last_id:
                return
            document = {
                "format": ANCHOR_FORMAT,
                "last_id": last_id,
                "last_hash": last_hash,
                "mac": self._mac(last_id, last_hash),
            }
            temporary = self.path.with_name(self.path.name + ".tmp")
            descriptor = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(document, handle)
            os.replace(temporary, self.path)
