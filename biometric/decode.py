"""Decode untrusted image bytes into an upright RGB array, refusing anything unsafe first.

What is accepted, and why
-------------------------
* **Formats: JPEG, PNG, WebP, BMP, TIFF.** These are what cameras, phones, scanners and
  document readers at a counter produce. Everything else Pillow can open (GIF, ICO, PSD,
  EPS, PCX, ...) raises :class:`UnsupportedImageFormat`: those plugins add attack surface and
  no face photo legitimately arrives that way. Bytes no plugin recognises, or an accepted
  format whose data is corrupt or truncated, raise :class:`ImageDecodeError`. A JPEG with a
  multi-picture (MPO) index, as some cameras write, is a JPEG: its first picture is used.
* **Limits are checked before the pixels are decoded.** The byte count first, then the
  width x height declared in the header (the plugin's ``open`` reads only the header), so a
  decompression bomb -- a 1 KB PNG declaring 50,000 x 50,000 -- is refused in microseconds
  without allocating its buffer. Wajah's own :class:`DecodeLimits` decide; Pillow's global
  ``Image.MAX_IMAGE_PIXELS`` is neither read nor changed, and Pillow's own
  ``DecompressionBombError``/``Warning`` (raised as an exception) map to
  :class:`ImageTooLarge` too.
* **Truncated data is an error, never a half-grey image.** Pillow only pads truncated images
  when the process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` is true; this module never sets it
  and refuses to decode (a :class:`WajahError`, the service's fault) if something else in the
  process has, because a padded photo would silently yield a wrong template.
* **Multi-frame TIFF and animated WebP:** the first frame only; later frames are not decoded.

Colour modes, all to ``(H, W, 3) uint8`` RGB
--------------------------------------------
* ``RGB``; grey ``L`` and 1-bit ``1`` replicated to three channels; palette ``P`` expanded;
  ``CMYK`` (including Adobe's inverted CMYK JPEGs, which Pillow un-inverts while decoding)
  converted with Pillow's formula -- embedded ICC profiles are not applied.
* **Transparency is composited onto white**, not dropped: ``RGBA``, ``LA``, ``PA``, ``RGBa``,
  and ``P``/``L``/``RGB`` images with a ``tRNS`` transparency key. The colour under a fully
  transparent pixel is undefined -- often black, or the remains of a background a cut-out
  tool removed -- so dropping alpha can put a feature into the image no person viewing the
  photo ever saw. White is how browsers and document viewers show the same file, so the
  officer and the matcher see the same picture. Opaque pixels are unchanged.
* **16-bit grey** (``I;16``, ``I;16B``, ``I;16L``; ``I`` holding 0..65535) is rescaled
  ``round(v * 255 / 65535)`` so 65535 -> 255 and 32768 -> 128; Pillow's own conversion to
  ``L`` clips at 255 and would turn most of the picture white. A 32-bit ``I`` image with
  values outside 0..65535 has no nominal range and is min-max stretched.
* **32-bit float ``F``:** values within [0, 1] are scaled by 255, values within [0, 255]
  are kept, anything else is min-max stretched; NaN and infinities become 0.

EXIF orientation (tag 0x0112; also Pillow's reading of an XMP ``tiff:Orientation``) is
applied, so a phone photo stored sideways comes out upright; :attr:`DecodedImage.source_width`
and ``source_height`` are the stored size. A missing, out-of-range or unreadable orientation
counts as 1 (a corrupt EXIF block never fails the decode).

Every function here is pure and safe to call from several threads at once.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
from PIL import (
    BmpImagePlugin,  # noqa: F401 -- importing a plugin registers it in Image.OPEN
    ExifTags,
    Image,
    ImageFile,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from wajah.biometric.errors import (
    ImageDecodeError,
    ImageDimensionsRefused,
    ImageTooComplex,
    ImageTooLarge,
    UnsupportedImageFormat,
    WajahError,
)

_T = TypeVar("_T")

# Pillow's format names, in the order headers are tried; all five have unambiguous magic bytes.
ACCEPTED_FORMATS: Final[tuple[str, ...]] = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")

# Pillow reports a JPEG with a multi-picture index as "MPO"; its first picture is a JPEG.
_REPORTED_FORMAT: Final[dict[str, str]] = {"MPO": "JPEG"}

_WHITE: Final = (255, 255, 255)
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_GREY_MAX: Final = 65535

# round(v * 255 / 65535) for every 16-bit value: exact, and the output is the only large array.
_SIXTEEN_TO_EIGHT_BIT: Final[np.ndarray] = (
    (np.arange(_SIXTEEN_BIT_GREY_MAX + 1, dtype=np.uint32) * 255 + _SIXTEEN_BIT_GREY_MAX // 2)
    // _SIXTEEN_BIT_GREY_MAX
).astype(np.uint8)  # (65536,) uint8

# EXIF orientation -> how to turn the stored pixels upright. Values as defined for tag 0x0112
# (Orientation) in CIPA DC-008-2019 (Exif 2.32); the same mapping as PIL.ImageOps.exif_transpose.
_UPRIGHT: Final[dict[int, Callable[[np.ndarray], np.ndarray]]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, k=-1),  # stored 90 degrees counter-clockwise: turn clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, k=1),  # stored 90 degrees clockwise: turn counter-clockwise
}


@dataclass(frozen=True)
class DecodeLimits:
    """Refuse inputs above these sizes before decoding them.

    Defaults set by the project: 15 MB holds a full-quality JPEG from a 12-24 MP phone camera;
    40 million pixels at up to 4 bytes a pixel caps the largest pixel buffer near 160 MB. Note a
    full-resolution 48-50 MP phone photo (e.g. 8064 x 6048) is above the pixel limit.
    """

    max_bytes: int = 15_000_000
    max_pixels: int = 40_000_000
    # Longer side over shorter side. Camera frames are 4:3 to 16:9 (1.78), phone panoramas and
    # scanned passport-page strips stay under 1:8; a 1 x 40,000 "image" is no photo and makes
    # the detector's image pyramid degenerate.
    max_aspect_ratio: float = 10.0
    # libjpeg's standard progression (jpeg_simple_progression) writes 10 scans for a colour
    # JPEG and 6 for grey; mozjpeg's optimised scripts stay under 20. Every scan is a full pass
    # over the coefficients, so thousands of tiny scans cost a worker tens of seconds
    # (measured: a 672 KB file, 23 s). 100 leaves 5x headroom over any encoder's output.
    max_jpeg_scans: int = 100

    def __post_init__(self) -> None:
        if (
            self.max_bytes <= 0
            or self.max_pixels <= 0
            or self.max_aspect_ratio < 1.0
            or self.max_jpeg_scans < 1
        ):
            raise ValueError("decode limits must be positive (and the aspect ratio at least 1)")


@dataclass(frozen=True)
class ImageHeader:
    """What the header of an accepted image declares; nothing has been decoded."""

    format: str  # one of ACCEPTED_FORMATS
    width: int  # as stored, before EXIF rotation
    height: int


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image, upright, with what was learned about the source."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous, writable, EXIF orientation applied
    format: str  # one of ACCEPTED_FORMATS
    source_width: int  # as stored, before EXIF rotation
    source_height: int  # as stored, before EXIF rotation
    exif_orientation: int  # 1..8; 1 if absent or unreadable
    mode: str  # Pillow mode of the source: "RGB", "L", "RGBA", "I;16", "CMYK", "P", ...


def probe_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> ImageHeader:
    """Check ``data`` against ``limits`` from its header alone, without decoding pixels.

    Cheap (microseconds to a millisecond), so a service runs it before it queues face work,
    and :func:`decode_image` runs it again before decoding. Raises :class:`ImageTooLarge`,
    :class:`ImageDimensionsRefused`, :class:`ImageTooComplex`, :class:`UnsupportedImageFormat`
    or :class:`ImageDecodeError`.
    """
    _check_bytes(data, limits)
    image, format_name = _open_within_limits(data, limits)
    with image:
        width, height = image.size
    return ImageHeader(format_name, width, height)


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode ``data`` to an upright RGB image.

    Raises what :func:`probe_image` raises (every limit is checked before decoding), and
    :class:`ImageDecodeError` when the data is corrupt or truncated.
    """
    _check_bytes(data, limits)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise WajahError(
            "refusing to decode: PIL.ImageFile.LOAD_TRUNCATED_IMAGES has been set to True in "
            "this process, which would silently accept truncated images"
        )

    image, format_name = _open_within_limits(data, limits)
    with image:
        width, height = image.size
        source_mode = image.mode
        _call_pillow(image.load, f"{format_name} data is corrupt or truncated", limits)
        orientation = _exif_orientation(image)
        stored = _call_pillow(
            lambda: _to_rgb(image), f"cannot convert {format_name} {source_mode} to RGB", limits
        )

    upright = np.ascontiguousarray(_UPRIGHT[orientation](stored))
    return DecodedImage(
        rgb=upright,
        format=format_name,
        source_width=width,
        source_height=height,
        exif_orientation=orientation,
        mode=source_mode,
    )


def _open_within_limits(data: bytes, limits: DecodeLimits) -> tuple[ImageFile.ImageFile, str]:
    """The image with only its header parsed, once its declared size, shape and (for JPEG) scan
    count are within ``limits``: the checks :func:`probe_image` and :func:`decode_image` share."""
    image, format_name = _open_header(data, limits)
    try:
        _check_dimensions(format_name, *image.size, limits)
        if format_name == "JPEG":
            _check_jpeg_scans(data, limits)
    except BaseException:
        image.close()
        raise
    return image, format_name


def _check_bytes(data: bytes, limits: DecodeLimits) -> None:
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"image is {len(data)} bytes; the limit is {limits.max_bytes}",
            limit=limits.max_bytes,
            actual=len(data),
            unit="bytes",
        )
    if not data:
        raise ImageDecodeError("image is empty (0 bytes)")


def _check_dimensions(format_name: str, width: int, height: int, limits: DecodeLimits) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{format_name} header declares an empty image {width}x{height}")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels; "
            f"the limit is {limits.max_pixels}",
            limit=limits.max_pixels,
            actual=width * height,
            unit="pixels",
        )
    if max(width, height) > limits.max_aspect_ratio * min(width, height):
        raise ImageDimensionsRefused(
            f"image is {width}x{height}: no photograph is that elongated "
            f"(the longer side may be at most {limits.max_aspect_ratio:g} times the shorter)",
            width=width,
            height=height,
            max_aspect_ratio=limits.max_aspect_ratio,
        )


# JPEG markers (ITU-T T.81 Table B.1) that stand alone, without a length field.
_JPEG_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI, EOI
_JPEG_SOS: Final = 0xDA
_JPEG_EOI: Final = 0xD9


def _check_jpeg_scans(data: bytes, limits: DecodeLimits) -> None:
    """Count the start-of-scan segments by walking the marker structure (T.81 annex B), so
    bytes inside metadata or entropy-coded data are never mistaken for markers."""
    scans = 0
    position = 2  # after SOI
    end = len(data)
    while position + 1 < end:
        if data[position] != 0xFF:
            return  # not at a marker: corrupt; the decoder will say so
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _JPEG_EOI:
            return
        if marker in _JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if position + 3 >= end:
            return
        segment_end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == _JPEG_SOS:
            scans += 1
            if scans > limits.max_jpeg_scans:
                raise ImageTooComplex(
                    f"the JPEG has more than {limits.max_jpeg_scans} scans; camera and "
                    "scanner JPEGs have at most a few dozen",
                    limit=limits.max_jpeg_scans,
                    actual=scans,
                )
            position = _skip_entropy_coded(data, segment_end)
        else:
            position = segment_end


def _skip_entropy_coded(data: bytes, position: int) -> int:
    """The offset of the next marker after entropy-coded data (FF 00 is a stuffed byte, FF D0
    to FF D7 are restart markers inside the scan)."""
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return len(data)
        following = data[position + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            position += 1 if following == 0xFF else 2
            continue
        return position


def read_image_file(path: Path, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Read and decode the image file at ``path``; its size is checked before it is read.

    Raises the errors of :func:`decode_image`, and :class:`ImageDecodeError` when the file is
    missing, not a regular file or unreadable.
    """
    try:
        size_bytes = path.stat().st_size
        if not path.is_file():
            raise ImageDecodeError(f"not a regular file: {path}")
        if size_bytes > limits.max_bytes:
            raise ImageTooLarge(
                f"image file is {size_bytes} bytes; the limit is {limits.max_bytes}",
                limit=limits.max_bytes,
                actual=size_bytes,
                unit="bytes",
            )
        with path.open("rb") as handle:
            # One byte over the limit is enough to notice a file that grew after stat().
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"image file not found: {path}") from exc
    except OSError as exc:
        raise ImageDecodeError(f"cannot read image file {path}: {exc.strerror or exc}") from exc
    return decode_image(data, limits)


def _open_header(data: bytes, limits: DecodeLimits) -> tuple[ImageFile.ImageFile, str]:
    """Identify ``data`` and parse its header only, trying the accepted plugins alone.

    ``Image.open`` is not used because it runs Pillow's global decompression-bomb check,
    which warns or raises by the process-wide MAX_IMAGE_PIXELS and hides the declared size
    this module needs for its own check. The loop mirrors ``Image.open``'s.
    """
    prefix = data[:16]
    header_errors: list[str] = []
    for format_name in ACCEPTED_FORMATS:
        if not _header_matches(format_name, prefix):
            continue
        factory = Image.OPEN[format_name][0]
        try:
            image = factory(io.BytesIO(data), "")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_refused(exc, limits) from exc
        except MemoryError:
            raise
        except Exception as exc:  # Pillow plugins raise many types on hostile headers
            header_errors.append(f"{format_name}: {exc}")
            continue
        return image, _REPORTED_FORMAT.get(image.format or format_name, format_name)
    if header_errors:
        raise ImageDecodeError("corrupt image header (" + "; ".join(header_errors) + ")")
    raise _classify_unaccepted(data)


def _header_matches(format_name: str, prefix: bytes) -> bool:
    accept = Image.OPEN[format_name][1]
    if accept is None:
        return True
    try:
        result = accept(prefix)
    except Exception:  # some plugins' checks index past a 1- or 2-byte prefix (struct.error)
        return False
    return bool(result) and not isinstance(result, str)  # a str is Pillow's "no, because"


def _classify_unaccepted(data: bytes) -> WajahError:
    """Tell an image in a format Wajah refuses from bytes that are no image at all.

    Only headers are parsed, never pixels. A format refusal wins over a size refusal: an
    oversized GIF is reported as a GIF, since it would never be decoded at any size.
    """
    Image.init()  # register every plugin, as Image.open does when the common ones fail
    prefix = data[:16]
    for format_name in Image.ID:
        if format_name in ACCEPTED_FORMATS or not _header_matches(format_name, prefix):
            continue
        try:
            Image.OPEN[format_name][0](io.BytesIO(data), "").close()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            pass  # recognised, and oversized: still this format
        except MemoryError:
            raise
        except Exception:  # not this format after all; try the next, like Image.open
            continue
        return UnsupportedImageFormat(
            f"{format_name} images are not accepted; send JPEG, PNG, WebP, BMP or TIFF"
        )
    return ImageDecodeError("data is not a recognised image (JPEG, PNG, WebP, BMP or TIFF)")


def _bomb_refused(exc: Exception, limits: DecodeLimits) -> ImageTooLarge:
    """Map Pillow's own decompression-bomb refusal; its message states the pixel count."""
    stated = re.search(r"\((\d+) pixels\)", str(exc))
    return ImageTooLarge(
        f"image refused as a possible decompression bomb: {exc}",
        limit=limits.max_pixels,
        actual=int(stated.group(1)) if stated else limits.max_pixels + 1,
        unit="pixels",
    )


def _call_pillow(operation: Callable[[], _T], failure: str, limits: DecodeLimits) -> _T:
    """Run one Pillow operation on untrusted data, mapping whatever it raises to our errors."""
    try:
        return operation()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_refused(exc, limits) from exc
    except MemoryError:
        raise
    except Exception as exc:  # zlib.error, struct.error, OSError, SyntaxError, EOFError, ...
        raise ImageDecodeError(f"{failure}: {exc}") from exc


def _exif_orientation(image: Image.Image) -> int:
    """EXIF orientation 1..8 of a loaded image; 1 when absent, out of range or unreadable."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
        orientation = int(value)
    except MemoryError:
        raise
    except Exception:  # a corrupt EXIF block must not fail the decode
        return 1
    return orientation if orientation in _UPRIGHT else 1


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Pixels of a loaded image as (H, W, 3) uint8 in stored orientation; see module doc."""
    mode = image.mode
    if mode.startswith("I;16") or mode in {"I", "F"}:
        return _grey_to_rgb(_scale_to_eight_bit(np.asarray(image)))
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, _WHITE)
        background.paste(rgba, mask=rgba)  # alpha-weighted blend onto white
        return np.array(background)
    if mode != "RGB":
        image = image.convert("RGB")
    return np.array(image)


def _scale_to_eight_bit(values: np.ndarray) -> np.ndarray:
    """(H, W) 16-bit, 32-bit int or float grey -> (H, W) uint8; see module doc for the rules."""
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        return np.take(_SIXTEEN_TO_EIGHT_BIT, values)
    if values.dtype.kind == "f":
        finite: np.ndarray = np.nan_to_num(
            values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0
        )
        low, high = float(finite.min()), float(finite.max())
        if low < 0.0 or high > 255.0:
            return _stretch(finite, low, high)
        factor = 255.0 if high <= 1.0 else 1.0
        return np.rint(finite * factor).astype(np.uint8)
    low_int, high_int = int(values.min()), int(values.max())
    if low_int >= 0 and high_int <= _SIXTEEN_BIT_GREY_MAX:
        return np.take(_SIXTEEN_TO_EIGHT_BIT, values)
    return _stretch(values.astype(np.float64), float(low_int), float(high_int))


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Min-max stretch to 0..255 for data with no nominal range."""
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) uint8."""
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
