"""Hostile import files, for tests and benchmarks: an Apple export that is its root element and then nothing but
padding (the shape of a damaged or malicious ``export.zip``), written without ever holding the padding in memory."""

from __future__ import annotations

import zipfile
from pathlib import Path

_BLOCK = 1 << 20


def padded_export_zip(path: Path, padding_bytes: int, filler: bytes = b"\0") -> Path:
    """A zip holding ``apple_health_export/export.xml``: ``<HealthData>`` followed by ``padding_bytes`` bytes of
    ``filler`` (zeros by default; a byte such as ``b" "`` or ``b"a"`` gives text without a tag boundary)."""
    block = (filler * (_BLOCK // len(filler) + 1))[:_BLOCK]
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("apple_health_export/export.xml", "w", force_zip64=True) as member,
    ):
        member.write(b"<HealthData>")
        left = padding_bytes
        while left > 0:
            member.write(block[: min(left, _BLOCK)])
            left -= _BLOCK
    return path
