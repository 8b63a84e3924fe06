"""Encryption at rest of templates and face images: AES-256-GCM with per-record associated data.

Ciphertext layout (``FORMAT_VERSION`` 1)::

    version (1 byte) | nonce (12 bytes, random) | AES-GCM ciphertext + 16-byte tag

The associated data names the record a ciphertext belongs to (``template:17:sample:9:...``), so a
ciphertext copied onto another row, or a row re-linked to another subject, fails to decrypt
instead of silently matching as somebody else.

A random 96-bit nonce per message is safe for up to 2**32 messages under one key (NIST SP
800-38D, section 8.3); a registry of a few million records, each written a handful of times, is
far below that.

The key is 32 random bytes, given as base64 in the settings or kept in a key file that is created
on first start with mode 0600, in a keys directory beside (never inside) the database.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wajah.enrollment.errors import EncryptionKeyError, RecordDecryptionError
from wajah.enrollment.structured_log import log_event
from wajah.matcher.atomic_files import fsync_directory

logger = logging.getLogger(__name__)

KEY_BYTES: Final = 32  # AES-256
NONCE_BYTES: Final = 12  # 96-bit nonce, the GCM recommendation (SP 800-38D, 5.2.1.1)
TAG_BYTES: Final = 16
FORMAT_VERSION: Final = 1
HEADER_BYTES: Final = 1 + NONCE_BYTES

KEY_CHECK_ASSOCIATED: Final = b"key-check"
KEY_CHECK_PLAINTEXT: Final = b"wajah records key check v1"
# Labels the key for the applications' lookup checks (a separate key from the AES one).
LOOKUP_KEY_LABEL: Final = b"wajah application lookup v1"

KEY_FILE_NAME: Final = "records.key"
KEYS_DIR_NAME: Final = "keys"


def default_key_file(data_dir: Path) -> Path:
    """Where the key file lives by default: ``<data_dir>/keys/records.key``, beside the
    database file, so that copying the database alone does not copy the key."""
    return data_dir / KEYS_DIR_NAME / KEY_FILE_NAME


class RecordCipher:
    """AES-256-GCM with a random nonce per message. Safe to share between threads: it holds
    only the immutable key schedule, and every call builds its own GCM context."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise EncryptionKeyError(f"the records key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self._lookup_key = hmac.new(key, LOOKUP_KEY_LABEL, hashlib.sha256).digest()

    def lookup_check(self, message: bytes) -> str:
        """The hex HMAC-SHA256 of ``message`` under the lookup key (the public status lookup
        compares it with :func:`hmac.compare_digest`)."""
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return bytes((FORMAT_VERSION,)) + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def decrypt(self, ciphertext: bytes, associated: bytes) -> bytes:
        """The plaintext, or :class:`RecordDecryptionError` if the ciphertext was altered,
        belongs to another record (other associated data) or was written under another key."""
        if len(ciphertext) < HEADER_BYTES + TAG_BYTES:
            raise RecordDecryptionError("ciphertext is truncated")
        if ciphertext[0] != FORMAT_VERSION:
            raise RecordDecryptionError(f"unknown ciphertext format version {ciphertext[0]}")
        nonce = ciphertext[1:HEADER_BYTES]
        try:
            return self._aead.decrypt(nonce, ciphertext[HEADER_BYTES:], associated)
        except InvalidTag:
            raise RecordDecryptionError(
                "ciphertext failed authentication (altered, moved to another record, or "
                "written under another key)"
            ) from None

    def key_check_value(self) -> bytes:
        """A ciphertext of a constant, stored once per database to recognise the right key."""
        return self.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_ASSOCIATED)

    def verify_key_check(self, stored: bytes) -> None:
        """Raise :class:`EncryptionKeyError` unless ``stored`` was made with this key."""
        try:
            plaintext = self.decrypt(stored, KEY_CHECK_ASSOCIATED)
        except RecordDecryptionError:
            plaintext = b""
        if plaintext != KEY_CHECK_PLAINTEXT:
            raise EncryptionKeyError(
                "the records key does not match the key this database was written with; "
                "refusing to start (check WAJAH_ENCRYPTION_KEY or the key file)"
            )


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(key_b64: str, *, source: str) -> bytes:
    try:
        key = base64.b64decode(key_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(f"the records key from {source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise EncryptionKeyError(
            f"the records key from {source} must decode to {KEY_BYTES} bytes, got {len(key)}"
        )
    return key


def load_or_create_key(key_b64: str | None, key_file: Path, create: bool) -> bytes:
    """The 32-byte records key.

    ``key_b64`` (from the settings) wins when given. Otherwise the key is read from
    ``key_file``; when the file does not exist and ``create`` is true a new random key is
    written there (directory 0700, file 0600, created atomically so two processes starting at
    once agree on one key). ``create`` should be true only for a new database: a database that
    already holds records needs the key it was written with, and a fresh key would only fail
    the key check later with a less obvious message.
    """
    if key_b64:
        return decode_key(key_b64, source="the settings")
    try:
        return _read_key_file(key_file)
    except FileNotFoundError:
        if not create:
            raise EncryptionKeyError(
                f"no records key: {key_file} does not exist and no key is set in the settings; "
                "restore the key file the database was written with"
            ) from None
    return _create_key_file(key_file)


def _read_key_file(key_file: Path) -> bytes:
    with key_file.open("rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        content = handle.read()
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log_event(
            logger,
            "key_file_permissions_too_open",
            level=logging.WARNING,
            path=str(key_file),
            mode=oct(stat.S_IMODE(mode)),
        )
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        raise EncryptionKeyError(f"the records key from {key_file} is not base64 text") from None
    return decode_key(text, source=str(key_file))


def _create_key_file(key_file: Path) -> bytes:
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_key()
    temporary = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(encode_key(key) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails if the name exists: the first process to start wins and everyone
            # else reads its key, and nobody ever sees a half-written file.
            os.link(temporary, key_file)
        except FileExistsError:
            return _read_key_file(key_file)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    fsync_directory(key_file.parent)
    log_event(logger, "records_key_created", path=str(key_file))
    return key
