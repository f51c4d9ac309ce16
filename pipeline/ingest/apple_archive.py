"""The bytes of an Apple Health export: the XML inside the iPhone's ``.zip`` (or the bare ``export.xml``), cut into
pieces that the parser (``apple_parse``) can take one at a time.

- The file is read in 1 MiB blocks; each piece is cut just before a ``<Record`` (or at least a ``<``), so no
  element is split across pieces, and ``<`` is ASCII, so no UTF-8 character is either. Memory holds one piece,
  whatever the file size (real exports are several GB).
- The internal DTD is never read: iOS 16 writes a broken one (``VisionPrescription`` never closed) that makes a
  strict parser fail, and it declares nothing we need. It is cut out; each piece's ``offset`` still counts it, so
  places in what is parsed are places in the file.
- Line numbers are counted only for an error message, by reading the file again (``line_places``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.ingest.apple_structure import line_numbers

XML_NAMES = ("export.xml", "exportar.xml", "exporter.xml", "exportieren.xml")
_READ_SIZE = 1 << 20  # with 30,000-record chunks this bounds the working set (benchmarks/import_apple_export.py)
# No element of an export comes near this (a record with its metadata is under 2 KB): text this long without a
# "<" is damage (a file padded with junk), and reading on would only grow memory.
MAX_ELEMENT_BYTES = 8 << 20


class AppleExportError(ValueError):
    """The file is not an Apple Health export we can read; the message says why."""


@dataclass(frozen=True)
class Piece:
    text: str  # decoded; starts at a "<" (the first piece: at the start of the file)
    offset: int  # the file's byte where the text starts (the DTD cut out before it counted)
    size: int  # bytes of the export body it holds
    damage: str | None = None  # the export is damaged right after this piece: what (reading stops)
    damage_at: int = 0  # the file's byte where the damage starts


def _pick_xml_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    candidates = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and not info.filename.startswith("__MACOSX/")
        and not Path(info.filename).name.startswith("._")
        and info.filename.lower().endswith(".xml")
        and "export_cda" not in info.filename.lower()
    ]
    if not candidates:
        raise AppleExportError("the zip holds no export XML")
    named = [c for c in candidates if Path(c.filename).name.lower() in XML_NAMES]
    return (named or sorted(candidates, key=lambda c: -c.file_size))[0]


@contextmanager
def open_export(path: Path) -> Iterator[tuple[IO[bytes], int]]:
    """The export XML as a binary stream, from an ``.xml`` or a ``.zip``, with its uncompressed size."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            member = _pick_xml_member(archive)
            with archive.open(member) as stream:
                yield stream, member.file_size
    else:
        with open(path, "rb") as stream:
            yield stream, path.stat().st_size


def _without_doctype(stream: IO[bytes], path: Path) -> tuple[int, Iterator[bytes]]:
    """(bytes of any ``<!DOCTYPE ...>`` block left out, the stream's blocks without it). Reads up to the root
    element at once, and refuses a file without one."""
    blocks_read: list[bytes] = []
    root_at = -1
    while True:
        block = stream.read(_READ_SIZE)
        blocks_read.append(block)
        head = b"".join(blocks_read[-2:])  # the name may straddle two blocks
        root_at = head.find(b"<HealthData")
        if root_at >= 0 or not block or len(blocks_read) > 64:
            break
    head = b"".join(blocks_read)
    root_at = head.find(b"<HealthData")
    if root_at < 0:
        raise AppleExportError(f"{path.name} is not an Apple Health export: it has no <HealthData> element")
    dropped = 0
    doctype_at = head.find(b"<!DOCTYPE", 0, root_at)
    if doctype_at >= 0:
        dropped = root_at - doctype_at
        head = head[:doctype_at] + head[root_at:]

    def blocks() -> Iterator[bytes]:
        yield head
        while block := stream.read(_READ_SIZE):
            yield block

    return dropped, blocks()


def export_pieces(stream: IO[bytes], path: Path) -> Iterator[Piece]:
    """The export body in pieces, each cut just before a ``<Record`` (or at least a ``<``).

    Damage that would make reading unbounded ends the pieces: a NUL byte (XML has none; a file padded with zeros)
    or `MAX_ELEMENT_BYTES` without a ``<``. The last piece then holds what came before it and says what and where
    (``damage``), so reading is linear and memory bounded whatever the file holds."""
    offset, blocks = _without_doctype(stream, path)
    buffer = b""
    for block in blocks:
        nul = block.find(b"\x00")
        buffer += block if nul < 0 else block[:nul]
        cut = buffer.rfind(b"<Record ")
        if cut <= 0:
            cut = buffer.rfind(b"<")
        if nul >= 0:  # what precedes the element the NUL is in is read; the element is damaged
            whole = buffer[: max(cut, 0)]
            yield Piece(whole.decode("utf-8", errors="replace"), offset, len(whole), "a NUL byte", offset + len(buffer))
            return
        if cut <= 0:
            if len(buffer) > MAX_ELEMENT_BYTES:
                what = f"{len(buffer):,} bytes without a tag boundary (an element is at most {MAX_ELEMENT_BYTES:,})"
                yield Piece("", offset, 0, what, offset)
                return
            continue
        piece, buffer = buffer[:cut], buffer[cut:]
        yield Piece(piece.decode("utf-8", errors="replace"), offset, len(piece))
        offset += len(piece)
    if buffer:
        yield Piece(buffer.decode("utf-8", errors="replace"), offset, len(buffer))


def line_places(path: Path, offsets: Sequence[int]) -> list[str]:
    """ "line L (byte B)" of each byte offset of the export (lines counted by reading the file again)."""
    with open_export(path) as (stream, _):
        lines = line_numbers(stream, list(offsets), _READ_SIZE)
    return [f"line {line} (byte {offset})" for line, offset in zip(lines, offsets, strict=True)]
