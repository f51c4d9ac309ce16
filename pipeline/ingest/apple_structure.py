"""The nesting of an Apple Health export's elements, followed piece by piece with array operations.

The parser sees one row per tag (see `apple_parse`); this module gets each row's role (+1 a start tag that stays
open, -1 a closing tag, 0 anything else: a self-closing element, a comment, text) and element kind, and finds the
first structural fault of the file without a per-tag loop:

- the depth before every row is a cumulative sum of the roles, starting from the elements left open by the pieces
  before (the ``Nesting`` carried between pieces);
- an open and a close at the same level (the depth after an open, before a close) are a pair when nothing at that
  level comes between them: sorting the tags stably by level puts every close right after its open, so one
  comparison of kinds finds a closing tag of the wrong kind, and a close below level 1 is one with nothing open;
- the element a tag sits in is the last open at its depth before it (one ``searchsorted`` in the same order): a
  ``<Record>`` directly inside a ``<Record>`` is a record whose ``</Record>`` is missing (Apple's DTD allows no
  such nesting, and without the check every record after it would be read as a child and dropped);
- an element outside ``<HealthData>`` (or a second root) is a fault too.

Elements still open at the end of the file are the caller's to report (a truncated file). Places are byte
offsets, found only for faults and elements left open; their line numbers are counted only for a fault's message,
by reading the file again (`line_numbers`): counting lines as the file is parsed would cost every import ~5 %.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RECORD, ENTRY, ROOT = 0, 1, 2  # codes of the element kinds the reader tells apart by prefix, and the root
_KNOWN = ("Record", "MetadataEntry", "HealthData")  # in code order


@dataclass(frozen=True)
class OpenElement:
    kind: int
    byte: int  # of its "<" in the file, from 0


@dataclass
class Nesting:
    """What the pieces read so far leave behind: the open elements (outermost first) and the kinds' names."""

    stack: list[OpenElement] = field(default_factory=list)
    root_opened: bool = False
    root_closed: bool = False  # saw </HealthData> closing the root
    names: list[str] = field(default_factory=lambda: list(_KNOWN))
    codes: dict[str, int] = field(default_factory=lambda: {name: code for code, name in enumerate(_KNOWN)})

    def kind_codes(self, names: pa.Array) -> np.ndarray:
        """The code of each element name (-1 where null); a piece holds a handful of distinct names."""
        encoded = pc.dictionary_encode(names)
        distinct = encoded.dictionary.to_pylist()
        for name in distinct:
            if name not in self.codes:
                self.codes[name] = len(self.names)
                self.names.append(name)
        lookup = np.array([self.codes[name] for name in distinct] + [-1], dtype=np.int32)
        codes: np.ndarray = lookup[pc.fill_null(encoded.indices, len(distinct)).to_numpy(zero_copy_only=False)]
        return codes

    def describe(self, element: OpenElement) -> str:
        """``<Name> opened at {opened}``: the caller puts the element's place in (`Fault.text`)."""
        return f"<{self.names[element.kind]}> opened at {OPENED}"


OPENED = "{opened}"  # where a fault's text names the place of the element it concerns


@dataclass(frozen=True)
class Fault:
    row: int  # the first row that breaks the structure; rows from it on are not to be read
    what: str  # e.g. "a stray </Correlation> (no <Correlation> is open)", with OPENED for ``opened``'s place
    opened: OpenElement | None = None


@dataclass(frozen=True)
class PieceNesting:
    depth: np.ndarray  # elements open before each row (the root counts: a top-level record is at depth 1)
    fault: Fault | None


def follow(
    nesting: Nesting,
    roles: np.ndarray,
    kinds: np.ndarray,
    is_record: np.ndarray,
    locate: Callable[[int], int],
) -> PieceNesting:
    """Follow one piece's rows: their depths and the first fault, if any; ``nesting`` is updated for the next
    piece (when there is no fault). ``locate(row)`` is the file's byte offset of a row's ``<``."""
    count = len(roles)
    carried = len(nesting.stack)
    depth = carried + np.cumsum(roles, dtype=np.int64) - roles
    events = np.flatnonzero(roles)
    role = roles[events].astype(np.int64)
    level = np.where(role > 0, depth[events] + 1, depth[events])
    # the elements left open by earlier pieces, as opens at levels 1..carried before the first row
    at = np.concatenate([np.arange(-carried, 0), events])
    levels = np.concatenate([np.arange(1, carried + 1), level])
    order = np.argsort(levels, kind="stable")
    s_at, s_level = at[order], levels[order]
    s_role = np.concatenate([np.ones(carried, np.int64), role])[order]
    s_kind = np.concatenate([np.array([e.kind for e in nesting.stack], np.int32), kinds[events]])[order]
    width = count + carried + 1
    keys = s_level * width + s_at + carried  # increasing: by level, then document order

    candidates: list[Fault] = []
    # closing tags: each closes the event just before it at its level, which must be an open of the same kind
    closes = np.flatnonzero(s_role < 0)
    partner = np.maximum(closes - 1, 0)
    unmatched = (s_level[closes] < 1) | (s_kind[partner] != s_kind[closes])
    if unmatched.any():
        wrong = closes[unmatched]
        first = wrong[np.argmin(s_at[wrong])]
        row, kind = int(s_at[first]), int(s_kind[first])
        inner: OpenElement | None = None
        if s_level[first] < 1:
            what = f"a stray </{nesting.names[kind]}> after </HealthData>"
        else:
            # the elements open there (outermost first): the last event before it at each level up to its own
            stack = np.searchsorted(keys, np.arange(1, s_level[first] + 1) * width + row + carried) - 1
            open_kinds = [int(s_kind[i]) for i in stack]
            if kind not in open_kinds:
                name = nesting.names[kind]
                what = f"a stray </{name}> (no <{name}> is open)"
            else:
                inner = _element(nesting, int(stack[-1]), s_at, s_kind, locate)
                what = f"{nesting.describe(inner)} is not closed before </{nesting.names[kind]}>"
        candidates.append(Fault(row, what, inner))
    # start tags outside the root: only the first, when it is <HealthData>, may be at depth 0
    starts = np.flatnonzero((kinds >= 0) & (roles >= 0) & (depth <= 0))
    if starts.size:
        allowed = (
            not nesting.root_opened and int(kinds[starts[0]]) == ROOT and roles[starts[0]] > 0 and depth[starts[0]] == 0
        )
        outside = starts[1:] if allowed else starts
        if outside.size:
            row = int(outside[0])
            where = "after </HealthData>" if nesting.root_opened or allowed else "outside <HealthData>"
            candidates.append(Fault(row, f"<{nesting.names[int(kinds[row])]}> {where}"))
    # records directly inside a record
    records = np.flatnonzero(is_record & (depth >= 2))
    if records.size:
        # the element each sits in: the last open at its depth before it
        parent = np.searchsorted(keys, depth[records] * width + records + carried) - 1
        nested = s_kind[parent] == RECORD
        if nested.any():
            first = int(np.argmax(nested))
            outer = _element(nesting, int(parent[first]), s_at, s_kind, locate)
            what = f"a <Record> inside {nesting.describe(outer)} (is its </Record> missing?)"
            candidates.append(Fault(int(records[first]), what, outer))
    if candidates:
        return PieceNesting(depth, min(candidates, key=lambda fault: fault.row))
    root_events = (s_kind == ROOT) & (s_level == 1)
    nesting.root_opened = nesting.root_opened or bool((root_events & (s_role > 0)).any())
    nesting.root_closed = nesting.root_closed or bool((root_events & (s_role < 0)).any())
    final = carried + int(roles.sum())
    last_at_level = np.searchsorted(s_level, np.arange(1, final + 1), side="right") - 1
    nesting.stack = [_element(nesting, int(i), s_at, s_kind, locate) for i in last_at_level]
    return PieceNesting(depth, None)


def _element(
    nesting: Nesting, position: int, s_at: np.ndarray, s_kind: np.ndarray, locate: Callable[[int], int]
) -> OpenElement:
    row = int(s_at[position])
    if row < 0:  # opened in an earlier piece
        return nesting.stack[row + len(nesting.stack)]
    return OpenElement(int(s_kind[position]), locate(row))


def locator(text: str, tags: pa.Array, start: int) -> Callable[[int], int]:
    """The file's byte offset of a row's ``<``, for the rows of ``text.split("<")`` (``tags``) of a piece that starts
    at byte ``start``. The rows' offsets are computed on first use: most pieces never need one."""
    offsets: list[np.ndarray] = []

    def locate(row: int) -> int:
        if not offsets:
            lengths = pc.utf8_length(tags).to_numpy()
            offsets.append(np.concatenate([[0], np.cumsum(lengths)]) + np.arange(len(tags) + 1))
        at = max(int(offsets[0][row]) - 1, 0)  # row r's "<" follows rows 0..r-1 and their r-1 separators
        return start + len(text[:at].encode("utf-8"))

    return locate


def line_numbers(stream: IO[bytes], offsets: list[int], read_size: int) -> list[int]:
    """The line (from 1) of each byte offset of the stream, counting newlines up to the last one."""
    lines: dict[int, int] = {}
    done = newlines = 0
    for offset in sorted(set(offsets)):
        while done < offset:
            piece = stream.read(min(read_size, offset - done))
            if not piece:
                break
            newlines += piece.count(b"\n")
            done += len(piece)
        lines[offset] = newlines + 1
    return [lines[offset] for offset in offsets]
