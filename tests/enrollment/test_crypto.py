from __future__ import annotations

import base64
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from wajah.enrollment.crypto import (
    FORMAT_VERSION,
    HEADER_BYTES,
    KEY_BYTES,
    TAG_BYTES,
    RecordCipher,
    default_key_file,
    encode_key,
    generate_key,
    load_or_create_key,
)
from wajah.enrollment.errors import EncryptionKeyError, RecordDecryptionError


@pytest.fixture
def cipher() -> RecordCipher:
    return RecordCipher(generate_key())


def test_round_trip_and_layout(cipher: RecordCipher) -> None:
    plaintext = b"\x00\x01 a template " * 40
    ciphertext = cipher.encrypt(plaintext, b"template:1")
    assert ciphertext[0] == FORMAT_VERSION
    assert len(ciphertext) == HEADER_BYTES + len(plaintext) + TAG_BYTES
    assert plaintext not in ciphertext
    assert cipher.decrypt(ciphertext, b"template:1") == plaintext


def test_nonce_is_fresh_for_every_message(cipher: RecordCipher) -> None:
    first = cipher.encrypt(b"same", b"a")
    second = cipher.encrypt(b"same", b"a")
    assert first[1:HEADER_BYTES] != second[1:HEADER_BYTES]
    assert first != second


def test_ciphertext_of_another_record_fails(cipher: RecordCipher) -> None:
    ciphertext = cipher.encrypt(b"vector of template 1", b"template:1")
    with pytest.raises(RecordDecryptionError):
        cipher.decrypt(ciphertext, b"template:2")


@pytest.mark.parametrize("position", [0, 1, HEADER_BYTES, -1])
def test_altered_ciphertext_fails(cipher: RecordCipher, position: int) -> None:
    altered = bytearray(cipher.encrypt(b"chip png bytes", b"sample-chip:3"))
    altered[position] ^= 0x01
    with pytest.raises(RecordDecryptionError):
        cipher.decrypt(bytes(altered), b"sample-chip:3")


def test_truncated_ciphertext_fails(cipher: RecordCipher) -> None:
    ciphertext = cipher.encrypt(b"x", b"a")
    with pytest.raises(RecordDecryptionError, match="truncated"):
        cipher.decrypt(ciphertext[: HEADER_BYTES + TAG_BYTES - 1], b"a")


def test_another_key_fails(cipher: RecordCipher) -> None:
    ciphertext = cipher.encrypt(b"secret", b"a")
    with pytest.raises(RecordDecryptionError):
        RecordCipher(generate_key()).decrypt(ciphertext, b"a")


def test_key_check_recognises_only_its_key(cipher: RecordCipher) -> None:
    value = cipher.key_check_value()
    cipher.verify_key_check(value)
    with pytest.raises(EncryptionKeyError, match="does not match"):
        RecordCipher(generate_key()).verify_key_check(value)
    with pytest.raises(EncryptionKeyError):
        cipher.verify_key_check(b"garbage")


def test_short_key_is_refused() -> None:
    with pytest.raises(EncryptionKeyError, match="32 bytes"):
        RecordCipher(b"\x00" * 16)


def test_settings_key_wins_over_file(tmp_path: Path) -> None:
    key = generate_key()
    key_file = tmp_path / "keys" / "records.key"
    assert load_or_create_key(encode_key(key), key_file, create=True) == key
    assert not key_file.exists()


@pytest.mark.parametrize(
    "key_b64",
    ["not base64 at all!", base64.b64encode(b"\x01" * 16).decode(), "QUJD"],
)
def test_malformed_settings_key_is_refused(tmp_path: Path, key_b64: str) -> None:
    with pytest.raises(EncryptionKeyError, match="the settings"):
        load_or_create_key(key_b64, tmp_path / "records.key", create=True)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    key_file = default_key_file(tmp_path)
    key = load_or_create_key(None, key_file, create=True)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert load_or_create_key(None, key_file, create=False) == key
    assert load_or_create_key(None, key_file, create=True) == key
    assert [path.name for path in key_file.parent.iterdir()] == ["records.key"]


def test_missing_key_file_without_create_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncryptionKeyError, match="does not exist"):
        load_or_create_key(None, tmp_path / "keys" / "records.key", create=False)


def test_corrupt_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "records.key"
    key_file.write_bytes(os.urandom(32))  # raw bytes, not the base64 text we write
    key_file.chmod(0o600)
    with pytest.raises(EncryptionKeyError, match="base64"):
        load_or_create_key(None, key_file, create=True)
    key_file.write_text("QUJD\n")
    with pytest.raises(EncryptionKeyError, match="32 bytes"):
        load_or_create_key(None, key_file, create=True)


def _create_key_in_process(key_file: str) -> bytes:
    return load_or_create_key(None, Path(key_file), create=True)


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "records.key"
    with ProcessPoolExecutor(max_workers=4) as pool:
        keys = list(pool.map(_create_key_in_process, [str(key_file)] * 8))
    assert len(set(keys)) == 1
    assert load_or_create_key(None, key_file, create=False) == keys[0]
