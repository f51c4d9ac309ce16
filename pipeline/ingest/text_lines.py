"""Lines of a text file (NDJSON, CSV) read in bounded blocks, with the lines no parser may see set apart.

A line that is not UTF-8, holds a NUL byte, or is longer than `MAX_LINE_BYTES` never reaches a parser: it comes
back as a `BadLine` with its line number and its bytes kept losslessly as escaped text (`escape_bytes`), or for an
over-long line its first bytes and its length (it is never held in memory whole). Every other line is decoded in
one piece per block. Memory holds one block plus at most one line, whatever the file.

For CSV (``quoted=True``) a row ends at a newline outside double quotes (a quoted cell may span lines): the quotes
before every newline are counted with NumPy, so rows are found without a loop per line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np

MAX_LINE_BYTES = 4 << 20  # a HealthSample line is a few hundred bytes; metadata rarely takes more than a few KB
BLOCK_BYTES = 8 << 20
_KEPT_OF_LONG_LINE = 1024  # bytes of an over-long line kept in its reject


def escape_bytes(raw: bytes) -> str:
    """Bytes as text PostgreSQL can store, reversibly (`unescape_bytes`): a backslash doubled, a byte that is not
    part of UTF-8 text (or a NUL) as ``\\xNN``; all other text as it is."""
    text = raw.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00")


_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def unescape_bytes(text: str) -> bytes:
    """The bytes `escape_bytes` escaped."""
    out = bytearray()
    at = 0
    for match in _ESCAPE.finditer(text):
        out += text[at : match.start()].encode("utf-8")
        escaped = match.group(1)
        out += b"\\" if escaped == "\\" else bytes([int(escaped[1:], 16)])
        at = match.end()
    out += text[at:].encode("utf-8")
    return bytes(out)


@dataclass(frozen=True)
class BadLine:
    number: int  # the line (from 1) the row starts on
    reason: str
    payload: dict[str, object]  # {"lineNumber", "lineEscaped"} (or, over-long, its first bytes and "bytes")


@dataclass
class LineBlock:
    text: str  # the good rows, each ending in a newline
    numbers: np.ndarray  # the line number each good row starts on
    bad: list[BadLine] = field(default_factory=list)
    bytes_done: int = 0  # of the file, up to the end of this block's rows


def _row_ends(data: np.ndarray, newlines: np.ndarray, quoted: bool) -> np.ndarray:
    """Indexes of the newlines that end a row (outside quotes when ``quoted``)."""
    if not quoted or newlines.size == 0:
        return newlines
    quotes_before = np.searchsorted(np.flatnonzero(data == 34), newlines)
    ends: np.ndarray = newlines[quotes_before % 2 == 0]
    return ends


def _undecodable_rows(body: bytes, starts: np.ndarray, ends: np.ndarray) -> dict[int, str]:
    """Row index -> reason, for rows that are not UTF-8 (found by decoding; one retry per bad row)."""
    bad: dict[int, str] = {}
    at = 0
    while at < len(body):
        try:
            body[at:].decode("utf-8")
            break
        except UnicodeDecodeError as error:
            where = at + error.start
            row = int(np.searchsorted(ends, where))
            column = where - int(starts[row]) + 1
            bad[row] = f"not UTF-8 text (byte 0x{body[where]:02x} at column {column})"
            at = int(ends[row]) + 1
    return bad


def read_lines(stream: IO[bytes], quoted: bool = False, block_bytes: int = BLOCK_BYTES) -> Iterator[LineBlock]:
    """Blocks of good rows and the bad ones among them, in file order."""
    carry = b""
    line = 1  # the line number of carry's first byte
    done = 0  # bytes of the file before carry
    skipping: tuple[int, bytes, int] | None = None  # an over-long row being passed over: its line, head, length
    while True:
        block = stream.read(block_bytes)
        if skipping is not None:
            at = block.find(b"\n")
            if at < 0 and block:
                skipping = (skipping[0], skipping[1], skipping[2] + len(block))
                continue
            number, head, length = skipping
            length += at if at >= 0 else 0
            yield LineBlock("", np.zeros(0, np.int64), [_too_long(number, head, length)], done + length + 1)
            done += length + (1 if at >= 0 else 0)
            line = number + 1
            skipping = None
            if at < 0:
                return
            block = block[at + 1 :]
        data = carry + block
        if not data:
            return
        array = np.frombuffer(data, np.uint8)
        newlines = np.flatnonzero(array == 10)
        ends = _row_ends(array, newlines, quoted)
        if not block:  # end of file: the last row needs no newline
            ends = np.append(ends, len(data)) if not ends.size or ends[-1] != len(data) - 1 else ends
        complete = min(int(ends[-1]) + 1, len(data)) if ends.size else 0
        carry = data[complete:]
        newlines_in_rows = int(np.searchsorted(newlines, complete))
        if len(carry) > MAX_LINE_BYTES:  # no row end within the bound: pass over the rest of this row
            carry_line = line + newlines_in_rows
            skipping = (carry_line, carry[:_KEPT_OF_LONG_LINE], len(carry))
            carry = b""
        if complete:
            yield _block(data[:complete], array[:complete], newlines[:newlines_in_rows], ends, line, done)
        line += newlines_in_rows
        done += complete
        if not block:
            return


def _too_long(number: int, head: bytes, length: int) -> BadLine:
    return BadLine(
        number,
        f"line {number} longer than {MAX_LINE_BYTES:,} bytes",
        {"lineNumber": number, "lineStartEscaped": escape_bytes(head), "bytes": length},
    )


def _block(body: bytes, array: np.ndarray, newlines: np.ndarray, ends: np.ndarray, line: int, done: int) -> LineBlock:
    """The rows of ``body`` (complete rows, ``ends`` their last byte or the end of the file; ``newlines`` where
    its newlines are)."""
    starts = np.concatenate([[0], ends[:-1] + 1])
    numbers = line + np.searchsorted(newlines, starts).astype(np.int64)  # a row's line: the newlines before it
    reasons = _undecodable_rows(body, starts, ends)
    for at in np.flatnonzero(array == 0):
        row = int(np.searchsorted(ends, at))
        reasons.setdefault(row, f"text holds a NUL byte (column {int(at - starts[row]) + 1})")
    lengths = np.minimum(ends, len(body)) - starts
    for long_row in np.flatnonzero(lengths > MAX_LINE_BYTES):
        reasons[int(long_row)] = f"longer than {MAX_LINE_BYTES:,} bytes"
    if not reasons:
        text = body.decode("utf-8")
        if not text.endswith("\n"):
            text += "\n"
        return LineBlock(text, numbers, [], done + len(body))
    bad = []
    pieces = []
    kept = np.ones(len(ends), bool)
    previous = 0
    for row in sorted(reasons):
        kept[row] = False
        start, stop = int(starts[row]), min(int(ends[row]) + 1, len(body))
        pieces.append(body[previous:start])
        previous = stop
        raw = body[start:stop].rstrip(b"\n").removesuffix(b"\r")
        number = int(numbers[row])
        if len(raw) > MAX_LINE_BYTES:
            bad.append(_too_long(number, raw[:_KEPT_OF_LONG_LINE], len(raw)))
        else:
            bad.append(
                BadLine(
                    number, f"line {number}: {reasons[row]}", {"lineNumber": number, "lineEscaped": escape_bytes(raw)}
                )
            )
    pieces.append(body[previous:])
    text = b"".join(pieces).decode("utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    return LineBlock(text, numbers[kept], bad, done + len(body))
