"""One piece of an Apple Health export (``apple_archive``) parsed into raw attribute columns, vectorized with Arrow.

In well-formed XML a ``<`` always opens a tag, so splitting a piece on ``<`` yields one tag per row. Tags are told
apart by prefix tests, and attributes come from one split of the tags on ``"`` and one lookup of every attribute
name, instead of a per-element callback parser: a callback parser (expat) spends ~8 us per record building Python
dicts; this costs ~2.3 us (~3 us with metadata on every other record), which is what makes 100,000+ records/s
possible. The nesting of the tags is followed (``apple_structure``): only records directly inside ``<HealthData>``
are read (``<Record>`` children of ``<Correlation>`` repeat top-level records), and nothing from the first
structural fault on.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.apple_structure import ENTRY, RECORD, Fault, Nesting, follow, locator

_RECORD_FIELDS = (
    "type",
    "value",
    "unit",
    "startDate",
    "endDate",
    "sourceName",
    "sourceVersion",
    "device",
    "creationDate",
)
# Elements that are structure or belong to records/workouts, not worth reporting as "not imported".
_QUIET_TAGS = frozenset(
    {
        "HealthData",
        "ExportDate",
        "Me",
        "Record",
        "MetadataEntry",
        "Location",
        "WorkoutEvent",
        "WorkoutStatistics",
        "FileReference",
        "InstantaneousBeatsPerMinute",
        "HeartRateVariabilityMetadataList",
        "WorkoutActivity",
        "WorkoutRoute",
    }
)
_NAMED_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


@dataclass
class ReadSummary:
    records: int = 0  # top-level <Record> elements
    skipped_types: Counter[str] = field(default_factory=Counter)  # Record types outside the catalogue
    other_elements: Counter[str] = field(default_factory=Counter)  # Workout, ActivitySummary, ...
    bytes_read: int = 0


def _unescape(values: pa.Array) -> pa.Array:
    """XML attribute values to text: the five named entities vectorized; numeric references (rare) one by one."""
    if not pc.any(pc.match_substring(values, "&")).as_py():
        return values
    for entity, char in _NAMED_ENTITIES:
        values = pc.replace_substring(values, entity, char)
    has_numeric = pc.match_substring(values, "&#")
    if pc.any(has_numeric).as_py():
        python = values.to_pylist()
        for i in np.flatnonzero(has_numeric.to_numpy(zero_copy_only=False)):
            python[i] = html.unescape(python[i])
        values = pa.array(python, pa.string())
    return values


def _attributes(tags: pa.Array, names: tuple[str, ...]) -> dict[str, pa.Array]:
    """The named attributes of each tag (null where absent), all at once.

    Splitting a tag on ``"`` puts ``name=`` parts at even positions and values at odd ones (a value cannot hold a
    raw ``"``), so one split plus one lookup of every key in the names replaces a regular expression per name. The
    values are gathered with one ``take`` into a names x tags block whose slices are the columns.
    """
    rows = len(tags)
    parts = pc.split_pattern(tags, '"')
    flat = pc.list_flatten(parts)
    owner = pc.list_parent_indices(parts).to_numpy()
    offsets = parts.offsets.to_numpy()
    position = np.arange(len(flat)) - offsets[owner]
    key_at = np.flatnonzero((position % 2 == 0) & (position + 1 < np.diff(offsets)[owner]))
    keys = pc.ascii_trim_whitespace(pc.take(flat, pa.array(key_at)))
    # The first key carries the element name ("Record type="); the usual spellings are in the value set, anything
    # else (odd whitespace) has the name stripped by a regular expression, on those few keys only.
    spellings = [f"{name}=" for name in names]
    value_set = spellings + [f"{element} {s}" for element in ("Record", "MetadataEntry") for s in spellings]
    found = pc.fill_null(pc.index_in(keys, value_set=pa.array(value_set)), -1).to_numpy().astype(np.int64)
    which = np.where(found >= 0, found % len(names), -1)
    odd_first = np.flatnonzero((which < 0) & (position[key_at] == 0))
    if odd_first.size:
        stripped = pc.replace_substring_regex(pc.take(keys, pa.array(odd_first)), r"^\S+\s+", "")
        found_first = pc.index_in(stripped, value_set=pa.array(spellings))
        which[odd_first] = pc.fill_null(found_first, -1).to_numpy()
    named = which >= 0
    gather = np.full(len(names) * rows, -1, dtype=np.int64)
    gather[which[named] * rows + owner[key_at[named]]] = key_at[named] + 1  # a repeated attribute: the last wins
    values = _unescape(pc.take(flat, pa.array(gather, mask=gather < 0)))
    return {name: values.slice(number * rows, rows) for number, name in enumerate(names)}


# Control characters JSON wants escaped: the usual five by name, the rest (rare: a damaged export) as \\u00XX.
_CONTROL = tuple(chr(code) for code in range(0x20) if chr(code) not in "\n\r\t")


def _json_string(values: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring_regex(values, '[\\\\"\\x00-\\x1f]')).as_py():  # else nothing to escape
        for char, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
            values = pc.replace_substring(values, char, escaped)
        for char in _CONTROL:
            if pc.any(pc.match_substring(values, char)).as_py():
                values = pc.replace_substring(values, char, f"\\u{ord(char):04x}")
    return pc.binary_join_element_wise('"', values, '"', "")


@dataclass
class ParseState:
    nesting: Nesting = field(default_factory=Nesting)
    byte_at: int = 0  # where in the file the piece being parsed starts (the DTD the reader drops counted)
    fault: tuple[int, Fault] | None = None  # the first structural fault and its byte: reading stops there


_ELEMENT_NAME = r"^(?P<close>/?)(?P<name>[A-Za-z]+)"
_SELF_CLOSING = r"/>\s*$"
RAW_COLUMNS = (*_RECORD_FIELDS, "metadata", "timezone", "user_entered")


def _scatter(values: pa.Array, rows: np.ndarray, length: int) -> pa.Array:
    """``values[i]`` placed at row ``rows[i]`` of an array of ``length`` (null elsewhere; a repeated row: the last)."""
    gather = np.full(length, -1, dtype=np.int64)
    gather[rows] = np.arange(len(rows))
    return pc.take(values, pa.array(gather, mask=gather < 0))


def parse_piece(text: str, state: ParseState, summary: ReadSummary) -> pa.Table:
    """Records of one piece as raw attribute columns plus metadata (JSON text), time zone and user-entered flag.

    Tags are told apart with prefix tests (``Record ``, ``MetadataEntry ``); only the few other tags (closing tags,
    Correlation, Workout, ...) have their name read by a regular expression. The nesting of all of them is followed
    (`apple_structure`): only records directly inside ``<HealthData>`` are read, and nothing from the first
    structural fault on (``state.fault`` then says where and what)."""
    tags = pa.array(text.split("<"), pa.string())  # Arrow's split_pattern is far slower on one long string
    count = len(tags)
    is_record = pc.starts_with(tags, "Record ").to_numpy(zero_copy_only=False)
    is_entry = pc.starts_with(tags, "MetadataEntry ").to_numpy(zero_copy_only=False)
    others = np.flatnonzero(~(is_record | is_entry))
    other_tags = pc.take(tags, pa.array(others))
    parts = pc.extract_regex(other_tags, _ELEMENT_NAME)
    other_names = pc.struct_field(parts, "name")
    closing = pc.fill_null(pc.equal(pc.struct_field(parts, "close"), "/"), False).to_numpy(zero_copy_only=False)
    starting = pc.is_valid(other_names).to_numpy(zero_copy_only=False) & ~closing
    is_record[others] = starting & pc.fill_null(pc.equal(other_names, "Record"), False).to_numpy(zero_copy_only=False)
    is_entry[others] = starting & pc.fill_null(pc.equal(other_names, "MetadataEntry"), False).to_numpy(
        zero_copy_only=False
    )
    # Roles: +1 a start tag left open, -1 a closing tag, 0 anything else (self-closing, comment, text)
    roles = np.zeros(count, dtype=np.int8)
    roles[others] = np.where(
        closing, -1, starting & ~pc.match_substring_regex(other_tags, _SELF_CLOSING).to_numpy(zero_copy_only=False)
    )
    records_at, entries_at = np.flatnonzero(is_record), np.flatnonzero(is_entry)
    prefixed = np.flatnonzero(is_record | is_entry)
    roles[prefixed] = ~pc.match_substring_regex(pc.take(tags, pa.array(prefixed)), _SELF_CLOSING).to_numpy(
        zero_copy_only=False
    )
    open_record = is_record & (roles > 0)
    kinds = np.full(count, -1, dtype=np.int32)
    kinds[others] = state.nesting.kind_codes(other_names)
    kinds[records_at], kinds[entries_at] = RECORD, ENTRY
    locate = locator(text, tags, state.byte_at)
    structure = follow(state.nesting, roles, kinds, is_record, locate)
    read = count
    if structure.fault is not None:
        read = structure.fault.row
        state.fault = (locate(read), structure.fault)
    depth = structure.depth
    before = others < read
    tallies = pc.value_counts(pc.filter(other_names, pa.array(starting & before)))
    for name, number in zip(tallies.field("values").to_pylist(), tallies.field("counts").to_pylist(), strict=True):
        if isinstance(name, str) and name not in _QUIET_TAGS:
            summary.other_elements[name] += int(number)
    # A MetadataEntry belongs to the record before it when that record is open and nothing else came between.
    last_other = np.maximum.accumulate(np.where(is_entry, -1, np.arange(count))) if count else np.zeros(0, np.int64)
    top_level = is_record & (depth == 1)
    top_level[read:] = False
    summary.records += int(top_level.sum())
    record_rows = int(top_level.sum())
    row_of = np.cumsum(top_level) - 1
    columns = _attributes(pc.take(tags, pa.array(np.flatnonzero(top_level))), _RECORD_FIELDS)
    entry_at = np.flatnonzero(is_entry & (depth == 2) & (last_other >= 0) & open_record[np.maximum(last_other, 0)])
    entry_at = entry_at[top_level[last_other[entry_at]]]
    metadata = pa.nulls(record_rows, pa.string())
    timezone = pa.nulls(record_rows, pa.string())
    user_entered = np.zeros(record_rows, dtype=bool)
    if entry_at.size:
        pairs = _attributes(pc.take(tags, pa.array(entry_at)), ("key", "value"))
        keys, values = pairs["key"], pairs["value"]
        owner_rows = row_of[last_other[entry_at]]
        # key/value pairs of entries inside a top-level record, as one JSON object per record
        # (entries come in document order, so each record's entries are one run of owner_rows)
        fragments = pc.binary_join_element_wise(_json_string(keys), _json_string(values), ": ")
        starts = np.flatnonzero(np.diff(owner_rows, prepend=-1))
        runs = pa.ListArray.from_arrays(pa.array(np.append(starts, len(owner_rows)), pa.int32()), fragments)
        objects = pc.binary_join_element_wise("{", pc.binary_join(runs, ", "), "}", "")
        metadata = _scatter(objects, owner_rows[starts], record_rows)
        is_zone = pc.fill_null(pc.equal(keys, "HKTimeZone"), False)
        timezone = _scatter(pc.filter(values, is_zone), owner_rows[is_zone.to_numpy(zero_copy_only=False)], record_rows)
        typed = pc.fill_null(pc.and_(pc.equal(keys, "HKWasUserEntered"), pc.equal(values, "1")), False)
        user_entered[owner_rows[typed.to_numpy(zero_copy_only=False)]] = True
    columns |= {"metadata": metadata, "timezone": timezone, "user_entered": pa.array(user_entered)}
    return pa.table([columns[name] for name in RAW_COLUMNS], names=list(RAW_COLUMNS))
