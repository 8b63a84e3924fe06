"""The one settings object. Built at the edge (CLI or app start-up) and passed down; no other
module reads the environment. Every field can be set as ``WAJAH_<FIELD>`` (e.g.
``WAJAH_DATA_DIR``) or in a ``.env`` file in the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("wajah", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAJAH_", env_file=".env", extra="ignore")

    # Where the database, the index and the keys live.
    data_dir: Path = Field(default_factory=_default_data_dir)
    # SQLAlchemy URL; empty means SQLite at <data_dir>/wajah.db.
    database_url: str = ""

    # Decoding limits, checked before the full decode.
    max_image_bytes: int = 15_000_000
    max_image_pixels: int = 40_000_000

    # Face engine.
    detector: Literal["hog", "cnn"] = "hog"
    max_detect_side_px: int = 1280
    template_jitter: int = 0
    # The ResNet that makes templates: "onnx" (dlib's weights on ONNX Runtime, ~15x faster,
    # templates equal to dlib's within cos 0.9999998) or "dlib" (the reference).
    embedder: Literal["onnx", "dlib"] = "onnx"

    # Face work: worker processes (dlib holds the GIL, so threads do not add throughput) and
    # the bound on admitted jobs; beyond it the service answers 503 with Retry-After.
    face_workers: int = 2
    face_queue_limit: int = 8
    # One photo's face work past this stops its worker (a new one starts) and answers 503
    # `timeout`; below request_timeout_s, so the worker is freed before the client gives up.
    face_job_timeout_s: float = 20.0

    # Gallery index: "flat" (exact, default), "hnsw", "ivf", "ivfpq", "sq8" or "milvus"
    # (matcher/config.py). vector_backend "milvus" is the same as index_kind "milvus";
    # "faiss" (or empty) keeps index_kind's FAISS kind.
    index_kind: Literal["flat", "hnsw", "ivf", "ivfpq", "sq8", "milvus"] = "flat"
    vector_backend: Literal["", "faiss", "milvus"] = ""
    # Milvus (kind "milvus"): a server or cluster (http://host:19530), or a milvus-lite
    # file path; empty = milvus-lite at <data_dir>/index/milvus.db. One collection per
    # gallery and writer: replicas sharing a Milvus set a collection name each.
    milvus_uri: str = ""
    milvus_collection: str = "wajah_gallery"
    milvus_index_type: Literal["FLAT", "IVF_FLAT", "HNSW"] = "IVF_FLAT"
    milvus_nprobe: int = 256  # a quarter of the lists (matcher.config.MILVUS_NPROBE)

    # Encryption at rest: a base64 32-byte key, or empty to use (and on first start create)
    # the key file <data_dir>/keys/records.key, kept outside the database.
    encryption_key: str | None = None
    key_file: Path | None = None

    # Decision thresholds (JSON written by `wajah calibrate`); empty = the shipped calibration.
    thresholds_file: Path | None = None

    # Replicas: a running service applies the other processes' template changes (other
    # replicas on one database, CLI writes) every this many seconds; on PostgreSQL a writer's
    # NOTIFY wakes it at once, so the poll only bounds the lag when a notice is lost.
    # 0 turns the follower off (a single process that is the only writer).
    replica_poll_s: float = Field(default=0.5, ge=0.0)
    # The template change log those followers replay is pruned of entries older than this
    # (hourly, by every serving process that follows it; or `wajah index prune-changes`). A
    # replica that was behind by more reconciles its index with the database instead of
    # replaying, so the retention bounds the table's size, never what a replica sees. A week
    # lets a replica stalled for days catch up cheaply. 0 keeps the log forever.
    change_log_retention_hours: float = Field(default=168.0, ge=0.0)

    # HTTP service (`wajah serve`).
    host: str = "127.0.0.1"
    port: int = 8000
    # Whole request bodies above this are refused with 413 before they are read in full; a
    # little above max_image_bytes so that a base64 or multipart envelope around the largest
    # accepted image still fits.
    max_request_bytes: int = 16 * 1024 * 1024
    # A request body must arrive within this (408 `request-timeout` otherwise), so a client
    # trickling bytes cannot hold a connection and its memory: 16 MB at 1 Mbit/s takes 134 s.
    upload_timeout_s: float = 180.0
    # A face request taking longer than this answers 503 `timeout`.
    request_timeout_s: float = 30.0
    # Requests per API key per minute (token bucket; bursts up to the same number).
    rate_limit_per_minute: int = 600
    # Failed authentications per client address per minute (bursts up to the same); beyond it
    # they answer 429 and are no longer written to the audit trail one by one.
    failed_auth_per_minute: int = 30
    # Failed 1:1 verifications in a row for one subject before it is locked out for the rest
    # of the window (an impostor trying photo after photo); a match resets the count.
    # The count is per counter (API key): one station can lock only itself out for a subject.
    # Across stations the subject locks at failed_verify_subject_limit.
    failed_verify_limit: int = 5
    failed_verify_subject_limit: int = 15
    failed_verify_window_s: float = 300.0

    # Applications (enrollment/applications.py). The types the office handles (JSON list in
    # the environment: WAJAH_APPLICATION_TYPES='["visa","stay_permit_kitas"]'), and the format
    # of the numbers it issues: {office} the office code, {year} the year of creation, {seq}
    # the application's never-reused id; at most 32 characters of A-Z, 0-9, '-' and '/'.
    application_types: list[str] = Field(
        default_factory=lambda: [
            "passport_new",
            "passport_renewal",
            "visa",
            "stay_permit_kitas",
            "stay_permit_kitap",
        ],
        min_length=1,
    )
    application_number_format: str = "{office}-{year}-{seq:06d}"
    office_code: str = Field(default="KANIM", pattern=r"^[A-Z0-9]{1,12}$")
    # The applicants' public status lookup: lookups per client address per minute (a token
    # bucket, bursts up to the same). An applicant needs a handful; 10 a minute makes guessing
    # a date of birth (about 36,500 candidates per number) take days from one address.
    public_lookup_per_minute: int = 10
    # The reports' days and weeks begin at midnight in the office's time zone, this many
    # minutes east of UTC (420: WIB, Jakarta; 480: WITA; 540: WIT).
    report_utc_offset_minutes: int = Field(default=420, ge=-720, le=840)

    @property
    def change_log_retention_s(self) -> float | None:
        """The change log's retention in seconds, or None to keep it forever."""
        return self.change_log_retention_hours * 3600.0 or None

    @property
    def database_path(self) -> Path:
        return self.data_dir / "wajah.db"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.database_path}"

    @property
    def model_cache_dir(self) -> Path:
        """Where the ResNet's ONNX graph is cached once built from dlib's weights."""
        return self.data_dir / "models"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index" / "gallery.widx"

    @property
    def audit_anchor_path(self) -> Path:
        """The audit chain's signed head, outside the database (enrollment/audit_anchor.py)."""
        return self.data_dir / "audit" / "chain-anchor.json"

    @property
    def resolved_index_kind(self) -> str:
        """index_kind, or "milvus" when vector_backend says so; ValueError when they
        contradict (vector_backend "faiss" with index_kind "milvus")."""
        if self.vector_backend == "milvus":
            return "milvus"
        if self.vector_backend == "faiss" and self.index_kind == "milvus":
            raise ValueError("WAJAH_VECTOR_BACKEND=faiss contradicts WAJAH_INDEX_KIND=milvus")
        return self.index_kind

    @property
    def resolved_milvus_uri(self) -> str:
        return self.milvus_uri or str(self.data_dir / "index" / "milvus.db")

    @property
    def key_file_path(self) -> Path:
        return self.key_file or self.data_dir / "keys" / "records.key"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir
