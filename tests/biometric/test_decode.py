"""Tests for biometric/decode.py. Every image is made here, in memory, or read from the real
photos in ../shared/faces; none is committed. Failures are real bad bytes, not mocks."""

from __future__ import annotations

import csv
import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from tests.bad_images import many_scan_jpeg
from wajah.biometric.decode import (
    DecodedImage,
    DecodeLimits,
    ImageHeader,
    decode_image,
    probe_image,
    read_image_file,
)
from wajah.biometric.errors import (
    ImageDecodeError,
    ImageDimensionsRefused,
    ImageTooComplex,
    ImageTooLarge,
    UnsupportedImageFormat,
    WajahError,
    WajahInputError,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def encode(image: Image.Image, format_name: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format_name, **options)
    return buffer.getvalue()


def gradient_rgb(height: int = 40, width: int = 60) -> np.ndarray:
    """(H, W, 3) uint8 with distinct, smooth channels (kind to lossy codecs)."""
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, np.newaxis]
    cols = np.linspace(0, 255, width, dtype=np.float32)[np.newaxis, :]
    red = np.broadcast_to(rows, (height, width))
    green = np.broadcast_to(cols, (height, width))
    blue = (red + green) / 2
    return np.stack([red, green, blue], axis=2).round().astype(np.uint8)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type+data (PNG spec, section 5.3)."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def handmade_png(width: int, height: int, idat: bytes) -> bytes:
    """8-bit RGB PNG with the given IHDR size and raw IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def handmade_grey_tiff(width: int, height: int) -> bytes:
    """Little-endian uncompressed 8-bit grey TIFF header declaring width x height, one strip,
    with only a few bytes of pixel data (TIFF 6.0, section 2 and the baseline tags)."""
    tags = [  # (tag, type SHORT=3 / LONG=4, value)
        (256, 4, width),  # ImageWidth
        (257, 4, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: black is zero
        (273, 4, 0),  # StripOffsets, patched below
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip
        (279, 4, width * height),  # StripByteCounts
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(tags) + 4
    entries = b"".join(
        struct.pack("<HHI", tag, kind, 1)
        + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        for tag, kind, value in ((t, k, data_offset if t == 273 else v) for t, k, v in tags)
    )
    header = b"II*\x00" + struct.pack("<I", ifd_offset)
    return header + struct.pack("<H", len(tags)) + entries + b"\x00" * 4 + b"\x00" * 64


def assert_well_formed(decoded: DecodedImage) -> None:
    assert decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.flags.c_contiguous


# --- accepted formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format_name", "options", "tolerance"),
    [
        ("PNG", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("JPEG", {"quality": 95}, 4),
    ],
)
def test_accepted_format_round_trips(
    format_name: str, options: dict[str, object], tolerance: int
) -> None:
    source = gradient_rgb()
    decoded = decode_image(encode(Image.fromarray(source), format_name, **options))

    assert_well_formed(decoded)
    assert decoded.format == format_name
    assert decoded.rgb.shape == (40, 60, 3)
    assert (decoded.source_width, decoded.source_height) == (60, 40)
    assert decoded.mode == "RGB"
    assert decoded.exif_orientation == 1
    difference = np.abs(decoded.rgb.astype(np.int16) - source.astype(np.int16))
    assert difference.mean() <= tolerance


def test_real_photo_decodes(faces_dir: Path) -> None:
    decoded = read_image_file(faces_dir / "face_recognition/obama/obama.jpg")

    assert_well_formed(decoded)
    assert decoded.format == "JPEG"
    assert decoded.rgb.shape == (1137, 910, 3)
    assert decoded.rgb.flags.writeable
    # A real colour photo, not a flat grey fill: spread of values and colour in the channels.
    assert decoded.rgb.std() > 30
    assert np.abs(decoded.rgb[..., 0].astype(int) - decoded.rgb[..., 2].astype(int)).mean() > 5


def test_webp_named_jpg_decodes_as_webp(faces_dir: Path) -> None:
    with (faces_dir / "deepface/manifest.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["format"] == "WEBP"]
    assert rows, "the deepface manifest lists a WebP file"
    row = rows[0]
    path = faces_dir / row["path"]
    assert path.suffix == ".jpg"

    decoded = read_image_file(path)

    assert decoded.format == "WEBP"
    assert decoded.rgb.shape == (int(row["height"]), int(row["width"]), 3)


def test_real_rgba_png_keeps_its_opaque_colours(faces_dir: Path) -> None:
    path = faces_dir / "face_recognition/obama/32bit.png"
    with Image.open(path) as image:
        rgba = np.asarray(image)
    assert rgba.shape[2] == 4 and (rgba[..., 3] == 255).all()

    decoded = read_image_file(path)

    assert decoded.mode == "RGBA"
    assert np.array_equal(decoded.rgb, rgba[..., :3])


def test_mpo_is_read_as_its_first_jpeg_picture() -> None:
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    data = encode(first, "MPO", save_all=True, append_images=[second])

    decoded = decode_image(data)

    assert decoded.format == "JPEG"
    assert np.abs(decoded.rgb.astype(int) - np.array(RED)).max() <= 3


@pytest.mark.parametrize(
    ("format_name", "options"),
    [("TIFF", {}), ("WEBP", {"lossless": True})],
)
def test_multi_frame_takes_first_frame(format_name: str, options: dict[str, object]) -> None:
    first, second = Image.new("RGB", (8, 6), RED), Image.new("RGB", (8, 6), BLUE)
    data = encode(first, format_name, save_all=True, append_images=[second], **options)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 2

    decoded = decode_image(data)

    assert (decoded.rgb == np.array(RED, dtype=np.uint8)).all()


# --- colour modes -------------------------------------------------------------------------------


def test_grey_is_replicated_to_three_channels() -> None:
    grey = gradient_rgb()[..., 1]
    decoded = decode_image(encode(Image.fromarray(grey, mode="L"), "PNG"))

    assert decoded.mode == "L"
    for channel in range(3):
        assert np.array_equal(decoded.rgb[..., channel], grey)


def test_alpha_is_composited_on_white() -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 10, 40)
    rgba[..., 3] = [[255, 0, 128], [255, 0, 128]]
    decoded = decode_image(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"))

    assert decoded.mode == "RGBA"
    assert tuple(decoded.rgb[0, 0]) == (200, 10, 40)  # opaque: unchanged
    assert tuple(decoded.rgb[0, 1]) == (255, 255, 255)  # transparent: white, not the hidden red
    half = decoded.rgb[0, 2].astype(int)  # half transparent: halfway to white
    expected = np.array([200, 10, 40]) * 128 / 255 + 255 * 127 / 255
    assert np.abs(half - expected).max() <= 1


def test_grey_with_alpha_is_composited_on_white() -> None:
    grey_alpha = np.array([[[0, 255], [0, 0]]], dtype=np.uint8)  # black opaque, black clear
    decoded = decode_image(encode(Image.fromarray(grey_alpha, mode="LA"), "PNG"))

    assert decoded.mode == "LA"
    assert tuple(decoded.rgb[0, 0]) == (0, 0, 0)
    assert tuple(decoded.rgb[0, 1]) == (255, 255, 255)


def test_palette_with_transparency() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    data = encode(image, "PNG", transparency=0)

    decoded = decode_image(data)

    assert decoded.mode == "P"
    assert tuple(decoded.rgb[0, 0]) == (255, 255, 255)  # index 0 is transparent black
    assert tuple(decoded.rgb[0, 1]) == RED


def test_one_bit_image() -> None:
    bits = Image.new("1", (4, 2), 0)
    bits.putpixel((1, 0), 1)
    decoded = decode_image(encode(bits, "PNG"))

    assert decoded.mode == "1"
    assert tuple(decoded.rgb[0, 1]) == (255, 255, 255)
    assert tuple(decoded.rgb[0, 0]) == (0, 0, 0)
    assert set(np.unique(decoded.rgb)) == {0, 255}


SIXTEEN_BIT_VALUES = np.array([[0, 257 * 100, 32768, 65535]], dtype=np.uint16)
SIXTEEN_BIT_EXPECTED = [0, 100, 128, 255]


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    data = encode(Image.fromarray(SIXTEEN_BIT_VALUES), "PNG")
    decoded = decode_image(data)

    assert decoded.mode == "I;16"
    assert decoded.rgb[0, :, 0].tolist() == SIXTEEN_BIT_EXPECTED
    assert (decoded.rgb[..., 0] == decoded.rgb[..., 2]).all()


@pytest.mark.parametrize(
    ("mode", "stored"),
    [
        ("I;16B", SIXTEEN_BIT_VALUES.astype(">u2")),  # Pillow's convert("I;16B") would clip
        ("I", SIXTEEN_BIT_VALUES.astype("<i4")),
    ],
)
def test_sixteen_bit_tiff_variants_are_scaled(mode: str, stored: np.ndarray) -> None:
    image = Image.frombytes(mode, (stored.shape[1], stored.shape[0]), stored.tobytes())
    decoded = decode_image(encode(image, "TIFF"))

    assert decoded.mode == mode
    assert decoded.rgb[0, :, 1].tolist() == SIXTEEN_BIT_EXPECTED


def test_float_image_in_unit_range_is_scaled() -> None:
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    decoded = decode_image(encode(Image.fromarray(values, mode="F"), "TIFF"))

    assert decoded.mode == "F"
    assert decoded.rgb[0, :, 0].tolist() == [0, 128, 255]


def test_adobe_cmyk_jpeg() -> None:
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    data = encode(cyan, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as check:
        assert "adobe" in check.info  # Pillow writes Adobe's inverted CMYK

    decoded = decode_image(data)

    assert decoded.mode == "CMYK"
    assert np.abs(decoded.rgb.astype(int) - np.array([0, 255, 255])).max() <= 3


# --- EXIF orientation ------------------------------------------------------------------------


def marked_image(height: int = 48, width: int = 80) -> np.ndarray:
    """Grey (H, W, 3) with a red 16 x 16 block in the stored top-left corner."""
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    pixels[:16, :16] = RED
    return pixels


def with_orientation(pixels: np.ndarray, format_name: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(pixels), format_name, exif=exif, quality=95)


@pytest.mark.parametrize(
    ("orientation", "turn_upright", "marker_corner"),
    [
        # Orientation 6: stored rotated 90 degrees counter-clockwise; top-left goes top-right.
        (6, lambda a: np.rot90(a, k=-1), (slice(0, 16), slice(-16, None))),
        # Orientation 8: stored rotated 90 degrees clockwise; top-left goes bottom-left.
        (8, lambda a: np.rot90(a, k=1), (slice(-16, None), slice(0, 16))),
    ],
)
def test_exif_rotation_is_applied_to_jpeg(
    orientation: int, turn_upright: object, marker_corner: tuple[slice, slice]
) -> None:
    pixels = marked_image()
    stored = decode_image(with_orientation(pixels, "JPEG", 1)).rgb
    decoded = decode_image(with_orientation(pixels, "JPEG", orientation))

    assert decoded.exif_orientation == orientation
    assert (decoded.source_width, decoded.source_height) == (80, 48)
    assert decoded.rgb.shape == (80, 48, 3)
    assert decoded.rgb.flags.c_contiguous
    # Same entropy-coded data, so the rotation must be pixel-exact.
    assert callable(turn_upright)
    assert np.array_equal(decoded.rgb, turn_upright(stored))
    marker = decoded.rgb[marker_corner].astype(int)
    assert np.abs(marker[2:-2, 2:-2] - np.array(RED)).max() <= 8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    data = with_orientation(gradient_rgb(30, 50), "PNG", orientation)
    with Image.open(io.BytesIO(data)) as image:
        reference = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))

    decoded = decode_image(data)

    assert decoded.exif_orientation == orientation
    assert np.array_equal(decoded.rgb, reference)


# Pillow warns about the second block; a warning is noise, not a failure of the decode.
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00this is not a TIFF structure",
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01",  # IFD claims 5 entries, has 0
    ],
)
def test_corrupt_exif_falls_back_to_orientation_one(exif: bytes) -> None:
    pixels = marked_image()
    data = encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)

    decoded = decode_image(data)

    assert decoded.exif_orientation == 1
    assert decoded.rgb.shape == pixels.shape


def test_out_of_range_orientation_counts_as_one() -> None:
    decoded = decode_image(with_orientation(marked_image(), "JPEG", 9))

    assert decoded.exif_orientation == 1
    assert decoded.rgb.shape == (48, 80, 3)


# --- refusals ----------------------------------------------------------------------------------


def test_empty_bytes() -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"")


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(0).bytes(4096),
        b"Name,Document\nnot,an image\n" * 20,
        b"\x89PNG\r\n\x1a\n",  # a PNG signature and nothing else
    ],
    ids=["random", "text", "bare-png-signature"],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(data)


def test_truncated_real_jpeg(faces_dir: Path) -> None:
    data = (faces_dir / "face_recognition/obama/obama.jpg").read_bytes()
    assert decode_image(data).rgb.shape == (1137, 910, 3)  # the whole file is fine

    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(data[: len(data) // 2])


def test_truncated_png() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")  # noise does not compress: IDAT is ~120 KB
    assert decode_image(data).rgb.shape == (200, 200, 3)

    with pytest.raises(ImageDecodeError):
        decode_image(data[: len(data) // 2])


def test_png_with_garbage_compressed_data() -> None:
    data = handmade_png(16, 16, np.random.default_rng(2).bytes(200))

    with pytest.raises(ImageDecodeError):
        decode_image(data)


@pytest.mark.parametrize(("format_name", "options"), [("GIF", {}), ("ICO", {}), ("PCX", {})])
def test_other_pillow_formats_are_unsupported(format_name: str, options: dict[str, object]) -> None:
    data = encode(Image.new("RGB", (16, 16), RED), format_name, **options)
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == format_name  # Pillow itself can read it

    with pytest.raises(UnsupportedImageFormat, match=format_name):
        decode_image(data)


def test_decompression_bomb_png_is_refused_from_its_header() -> None:
    row = b"\x00" + bytes(50_000 * 3)  # filter byte + one black row
    data = handmade_png(50_000, 50_000, zlib.compress(row * 4, 9))
    assert len(data) < 2048

    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as refused:
        decode_image(data)
    elapsed_s = time.perf_counter() - started

    assert elapsed_s < 0.2
    assert refused.value.unit == "pixels"
    assert refused.value.actual == 50_000 * 50_000
    assert refused.value.limit == DecodeLimits().max_pixels


def test_pillow_decompression_bomb_error_maps_to_image_too_large() -> None:
    # Our limit is raised above Pillow's, so Pillow's own check (at TIFF load) fires first.
    data = handmade_grey_tiff(20_000, 10_000)
    pillow_error_above = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    assert 0 < pillow_error_above < 20_000 * 10_000

    with pytest.raises(ImageTooLarge) as refused:
        decode_image(data, DecodeLimits(max_pixels=10**9))

    assert refused.value.unit == "pixels"
    assert refused.value.actual == 20_000 * 10_000


def test_pixel_limit_is_inclusive() -> None:
    data = encode(Image.new("RGB", (100, 50)), "PNG")

    assert decode_image(data, DecodeLimits(max_pixels=5000)).rgb.shape == (50, 100, 3)
    with pytest.raises(ImageTooLarge) as refused:
        decode_image(data, DecodeLimits(max_pixels=4999))
    assert (refused.value.unit, refused.value.actual, refused.value.limit) == ("pixels", 5000, 4999)


def test_byte_limit() -> None:
    data = encode(Image.fromarray(gradient_rgb()), "PNG")

    assert decode_image(data, DecodeLimits(max_bytes=len(data))).format == "PNG"
    with pytest.raises(ImageTooLarge) as refused:
        decode_image(data, DecodeLimits(max_bytes=len(data) - 1))
    assert refused.value.unit == "bytes"
    assert (refused.value.actual, refused.value.limit) == (len(data), len(data) - 1)


def test_byte_limit_beats_everything_else() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(b"not an image at all", DecodeLimits(max_bytes=4))


def test_errors_are_input_errors() -> None:
    for error in (ImageDecodeError, UnsupportedImageFormat, ImageTooLarge):
        assert issubclass(error, WajahInputError)


def test_truncated_images_setting_elsewhere_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.fromarray(gradient_rgb()), "PNG")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)

    with pytest.raises(WajahError, match="LOAD_TRUNCATED_IMAGES") as refused:
        decode_image(data)
    assert not isinstance(refused.value, WajahInputError)  # the service's fault, not the caller's


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        DecodeLimits(max_pixels=0)


# --- files -------------------------------------------------------------------------------------


def test_read_image_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(encode(Image.fromarray(gradient_rgb()), "PNG"))

    decoded = read_image_file(path)

    assert decoded.format == "PNG"
    assert np.array_equal(decoded.rgb, gradient_rgb())


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="not found"):
        read_image_file(tmp_path / "absent.jpg")


def test_read_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError):
        read_image_file(tmp_path)


def test_read_file_over_byte_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(Image.fromarray(gradient_rgb()), "PNG"))

    with pytest.raises(ImageTooLarge) as refused:
        read_image_file(path, DecodeLimits(max_bytes=100))
    assert refused.value.unit == "bytes"
    assert refused.value.actual == path.stat().st_size


@pytest.mark.parametrize("data", [b"\xff", b"\xff\xd8", b"\x89", b"BM", b"II", b"R"])
def test_one_and_two_byte_prefixes_are_decode_errors(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(data)
    with pytest.raises(ImageDecodeError):
        probe_image(data)


@pytest.mark.parametrize(("width", "height"), [(1, 39_999), (39_999, 1), (2, 20_000_000)])
def test_extreme_aspect_ratios_are_refused_from_the_header(width: int, height: int) -> None:
    data = handmade_png(width, height, b"")
    with pytest.raises(ImageDimensionsRefused) as refused:
        probe_image(data)
    assert (refused.value.width, refused.value.height) == (width, height)
    with pytest.raises(ImageDimensionsRefused):
        decode_image(data)


def test_aspect_ratio_limit_is_inclusive() -> None:
    limits = DecodeLimits(max_aspect_ratio=10.0)
    image = Image.fromarray(np.zeros((10, 100, 3), dtype=np.uint8))
    assert probe_image(encode(image, "PNG"), limits) == ImageHeader("PNG", 100, 10)
    wider = Image.fromarray(np.zeros((10, 101, 3), dtype=np.uint8))
    with pytest.raises(ImageDimensionsRefused):
        probe_image(encode(wider, "PNG"), limits)


def test_jpeg_scans_are_counted_by_marker_structure() -> None:
    pixels = gradient_rgb(64, 64)
    progressive = encode(Image.fromarray(pixels), "JPEG", progressive=True)
    scans = progressive.count(b"\xff\xda")
    assert scans >= 6  # libjpeg's standard progression
    assert decode_image(progressive, DecodeLimits(max_jpeg_scans=scans)).rgb.shape == (64, 64, 3)
    with pytest.raises(ImageTooComplex) as refused:
        probe_image(progressive, DecodeLimits(max_jpeg_scans=scans - 1))
    assert refused.value.limit == scans - 1


def test_thousands_of_scans_are_refused_before_decoding() -> None:
    many = many_scan_jpeg(encode(Image.fromarray(gradient_rgb(64, 64)), "JPEG"), 2000)
    with pytest.raises(ImageTooComplex):
        decode_image(many)
