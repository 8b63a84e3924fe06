"""A corpus of hostile, broken and odd image files, made at test time from one real photo.

Each :class:`BadImage` names the problem slug every image endpoint must answer with when the
refusal comes from the image itself (decode, format, limits); ``slug=None`` marks files that
decode (odd but valid pictures with no usable face), whose answer depends on the endpoint but
must still be a 2xx or a typed 4xx. Used by the live-server resilience tests and the CLI tests.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

DECODE_ERROR = "image-decode-error"
UNSUPPORTED = "unsupported-image-format"
TOO_LARGE = "image-too-large"
DIMENSIONS = "image-dimensions"
TOO_COMPLEX = "image-too-complex"


@dataclass(frozen=True)
class BadImage:
    name: str
    data: bytes
    slug: str | None  # the problem every endpoint answers; None: decodes, endpoint decides


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_declaring(width: int, height: int, idat: bytes = b"", bit_depth: int = 1) -> bytes:
    """A grey PNG whose header declares width x height; ``idat`` as given (maybe nothing)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", header)
    if idat:
        chunks += _png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + chunks + _png_chunk(b"IEND", b"")


def png_bomb(side_px: int) -> bytes:
    """A 1-bit PNG of side x side zero pixels, fully compressed (a real decompression bomb)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + side_px // 8)
    rows = b"".join(compressor.compress(row) for _ in range(side_px)) + compressor.flush()
    return png_declaring(side_px, side_px, rows)


def jpeg_declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOF0/SOF2) rewritten to declare width x height."""
    data = bytearray(jpeg)
    position = 2
    while position + 4 < len(data):
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            data[position + 5 : position + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        position += 2 + length
    raise ValueError("no frame header found")


def bmp_declaring(width: int, height: int) -> bytes:
    """A 102-byte BMP whose info header declares width x height at 24 bits."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    pixels = b"\x00" * 48
    size = 14 + len(info) + len(pixels)
    return b"BM" + struct.pack("<IHHI", size, 0, 0, 14 + len(info)) + info + pixels


def tiff_declaring(width: int, height: int) -> bytes:
    """A minimal little-endian grey TIFF declaring width x height (no strip data)."""
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, 1),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def encode(image: Image.Image, format_name: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format_name, **options)
    return buffer.getvalue()


def many_scan_jpeg(jpeg: bytes, scans: int) -> bytes:
    """A progressive JPEG with its last scan repeated until it has ``scans`` scans."""
    progressive = encode(Image.open(io.BytesIO(jpeg)).convert("RGB"), "JPEG", progressive=True)
    last_scan = progressive.rindex(b"\xff\xda")
    end = progressive.rindex(b"\xff\xd9")
    head, scan = progressive[:last_scan], progressive[last_scan:end]
    present = progressive.count(b"\xff\xda")
    return head + scan * (scans - present + 1) + b"\xff\xd9"


def corpus(good_jpeg: bytes, *, max_image_bytes: int = 15_000_000) -> list[BadImage]:
    """At least 60 bad or odd image files derived from ``good_jpeg`` (a real face photo)."""
    rng = random.Random(20261203)
    photo = Image.open(io.BytesIO(good_jpeg)).convert("RGB")
    good_png = encode(photo, "PNG")
    items: list[BadImage] = []

    def add(name: str, data: bytes, slug: str | None) -> None:
        items.append(BadImage(name, data, slug))

    add("empty", b"", DECODE_ERROR)
    for length in (1, 2, 3, 4, 10, 20, 100, 1000):
        add(f"jpeg-first-{length}-bytes", good_jpeg[:length], DECODE_ERROR)
    add("jpeg-half", good_jpeg[: len(good_jpeg) // 2], DECODE_ERROR)
    add("jpeg-two-thirds", good_jpeg[: len(good_jpeg) * 2 // 3], DECODE_ERROR)
    for length in (1, 8, 16, 33):
        add(f"png-first-{length}-bytes", good_png[:length], DECODE_ERROR)
    add("png-half", good_png[: len(good_png) // 2], DECODE_ERROR)
    corrupt = bytearray(good_jpeg)
    for offset in range(len(corrupt) // 3, len(corrupt) * 2 // 3, 97):
        corrupt[offset] ^= 0xFF
    add("jpeg-flipped-bytes", bytes(corrupt), None)  # libjpeg may decode garbage: no face
    add("png-bad-crc", good_png[:29] + b"\x00\x00\x00\x00" + good_png[33:], DECODE_ERROR)
    add("png-garbage-idat", png_declaring(64, 64, b"not zlib at all" * 8, 8), DECODE_ERROR)
    add("png-declares-50000-header-only", png_declaring(50_000, 50_000), TOO_LARGE)
    add("png-bomb-20000", png_bomb(20_000), TOO_LARGE)
    add("png-bomb-50000", png_bomb(50_000), TOO_LARGE)
    add("jpeg-declares-65500", jpeg_declaring(good_jpeg, 65_500, 65_500), TOO_LARGE)
    add("bmp-declares-huge", bmp_declaring(60_000, 60_000), TOO_LARGE)
    add("tiff-declares-huge", tiff_declaring(70_000, 70_000), TOO_LARGE)
    add("png-strip-1x39999", png_declaring(1, 39_999), DIMENSIONS)
    add("png-strip-39999x1", png_declaring(39_999, 1), DIMENSIONS)
    add("png-strip-2x20000000", png_declaring(2, 20_000_000), DIMENSIONS)
    add("png-strip-20000000x2", png_declaring(20_000_000, 2), DIMENSIONS)
    add("bmp-strip-3x40000", bmp_declaring(3, 40_000), DIMENSIONS)
    add("jpeg-strip-65000x8", jpeg_declaring(good_jpeg, 65_000, 8), DIMENSIONS)
    add("jpeg-2000-scans", many_scan_jpeg(good_jpeg, 2000), TOO_COMPLEX)
    oversized = good_jpeg + bytes(rng.getrandbits(8) for _ in range(1024)) * (
        (max_image_bytes - len(good_jpeg)) // 1024 + 512
    )
    add("jpeg-padded-past-byte-limit", oversized, TOO_LARGE)
    add("gif", encode(photo, "GIF"), UNSUPPORTED)
    add("ico", encode(photo.resize((64, 64)), "ICO"), UNSUPPORTED)
    add("pcx", encode(photo, "PCX"), UNSUPPORTED)
    add("tga", encode(photo, "TGA"), UNSUPPORTED)
    add("ppm", encode(photo, "PPM"), UNSUPPORTED)
    add("pdf-bytes", b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", DECODE_ERROR)
    add("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', DECODE_ERROR)
    add("html", b"<!doctype html><html><body><img src=x></body></html>", DECODE_ERROR)
    add("json", b'{"image": "not really"}', DECODE_ERROR)
    add("text", b"hello, I am not a photo\n" * 20, DECODE_ERROR)
    add("zip", b"PK\x03\x04" + bytes(60), DECODE_ERROR)
    add("elf", b"\x7fELF\x02\x01\x01" + bytes(120), DECODE_ERROR)
    add("all-zero-4k", bytes(4096), DECODE_ERROR)
    add("all-ff-4k", b"\xff" * 4096, DECODE_ERROR)
    for seed in range(4):
        local = random.Random(seed)
        add(f"random-{seed}", bytes(local.getrandbits(8) for _ in range(2048)), DECODE_ERROR)
    add("jpeg-magic-then-random", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, DECODE_ERROR)
    add("png-magic-only", b"\x89PNG\r\n\x1a\n", DECODE_ERROR)
    add("webp-magic-then-junk", b"RIFF\x20\x00\x00\x00WEBPVP8 " + bytes(24), DECODE_ERROR)
    add("bmp-magic-only", b"BM" + bytes(12), DECODE_ERROR)
    add("tiff-magic-only", b"II*\x00\x08\x00\x00\x00", DECODE_ERROR)
    # Valid pictures with no usable face: they decode; the endpoint decides what that means.
    add("jpeg-1x1", encode(Image.new("RGB", (1, 1)), "JPEG"), None)
    add("png-8x8", encode(Image.new("RGB", (8, 8), (200, 10, 10)), "PNG"), None)
    add("white-640x480", encode(Image.new("RGB", (640, 480), (255, 255, 255)), "JPEG"), None)
    add("black-640x480", encode(Image.new("L", (640, 480), 0), "PNG"), None)
    noise = np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    add("noise-640x480", encode(Image.fromarray(noise), "PNG"), None)
    add("face-blurred", encode(photo.resize((12, 12)).resize(photo.size), "JPEG"), None)
    add("face-dark", encode(photo.point(lambda value: value // 12), "JPEG"), None)
    add("face-rotated-90", encode(photo.rotate(90, expand=True), "JPEG"), None)
    add("face-tiny-40px", encode(photo.resize((40, 40)), "JPEG"), None)
    grey16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    add("png-16-bit-grey", encode(Image.fromarray(grey16), "PNG"), None)
    add("jpeg-cmyk", encode(photo.convert("CMYK"), "JPEG"), None)
    transparent = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    add("png-fully-transparent", encode(transparent, "PNG"), None)
    add("png-palette", encode(photo.convert("P"), "PNG"), None)
    add("png-1-bit", encode(photo.convert("1"), "PNG"), None)
    add("webp-face", encode(photo, "WEBP"), None)
    add("tiff-face", encode(photo, "TIFF"), None)
    add("bmp-face", encode(photo, "BMP"), None)
    exif = Image.Exif()
    exif[0x0112] = 9  # an orientation value that does not exist
    add("jpeg-bad-orientation", encode(photo, "JPEG", exif=exif), None)
    assert len(items) >= 60, len(items)
    return items
