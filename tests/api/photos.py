"""Real photos the API tests send (from ../shared/faces, never copied into the repo)."""

from __future__ import annotations

from pathlib import Path


def lfw(faces_dir: Path, name: str, number: int) -> bytes:
    return (faces_dir / "lfw_deepfunneled" / name / f"{name}_{number:04d}.jpg").read_bytes()


def upload(image: bytes, name: str = "photo.jpg") -> dict[str, tuple[str, bytes, str]]:
    return {"image": (name, image, "application/octet-stream")}
