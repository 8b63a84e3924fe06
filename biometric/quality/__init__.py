"""Face image quality: is this capture good enough to enrol or to verify?

In the spirit of ISO/IEC 29794-5 (face image quality, implemented by BSI's OFIQ) and the ICAO
9303 / ISO/IEC 19794-5 portrait rules, reduced to measures that need only the RGB array, the
detected boxes and the 68 landmarks: no extra model. Every measure is a
:class:`QualityComponent` with the raw value, the threshold, a verdict and a sentence a clerk
can act on ("Face too small: 42 px between the eyes, need 60 - move closer").

What is checked, and what must pass, is one :class:`QualityProfile` per use (the table
``PROFILES`` below): strict for enrollment at the camera, lenient at the verification counter,
permissive for legacy archive scans.

Image measures are taken on the face region only, resampled to a fixed width, so they do not
depend on the image resolution and cost well under 10 ms per 640 x 480 frame.

The package, one concept a module: ``report`` (component names, QualityComponent,
QualityReport), ``profiles`` (QualityProfile and the documented threshold table), ``measures``
(the face region and the image and landmark measures), ``capture`` (what the checks read from one
capture, measured once) and ``checks`` (the table of checks and :func:`assess_quality`). Every
public name is re-exported here: import from ``biometric.quality``.
"""

from wajah.biometric.quality.checks import assess_quality
from wajah.biometric.quality.measures import (
    BRIGHT_PIXEL_MIN,
    DARK_PIXEL_MAX,
    NORMALISED_FACE_WIDTH_PX,
    eye_aspect_ratio,
    mouth_open_ratio,
)
from wajah.biometric.quality.profiles import (
    ENROLLMENT,
    PROFILES,
    SCAN,
    VERIFICATION,
    QualityProfile,
)
from wajah.biometric.quality.report import (
    COMPONENT_NAMES,
    CONTRAST,
    EXPOSURE,
    EYES_OPEN,
    FACE_COUNT,
    FACE_MARGIN,
    FACE_SIZE,
    ILLUMINATION_UNIFORMITY,
    INTER_EYE_DISTANCE,
    MOUTH_CLOSED,
    OVEREXPOSURE,
    PITCH,
    ROLL,
    SHARPNESS,
    UNDEREXPOSURE,
    YAW,
    QualityComponent,
    QualityReport,
)

__all__ = [
    "BRIGHT_PIXEL_MIN",
    "COMPONENT_NAMES",
    "CONTRAST",
    "DARK_PIXEL_MAX",
    "ENROLLMENT",
    "EXPOSURE",
    "EYES_OPEN",
    "FACE_COUNT",
    "FACE_MARGIN",
    "FACE_SIZE",
    "ILLUMINATION_UNIFORMITY",
    "INTER_EYE_DISTANCE",
    "MOUTH_CLOSED",
    "NORMALISED_FACE_WIDTH_PX",
    "OVEREXPOSURE",
    "PITCH",
    "PROFILES",
    "ROLL",
    "SCAN",
    "SHARPNESS",
    "UNDEREXPOSURE",
    "VERIFICATION",
    "YAW",
    "QualityComponent",
    "QualityProfile",
    "QualityReport",
    "assess_quality",
    "eye_aspect_ratio",
    "mouth_open_ratio",
]
