"""Reading a device sync's JSON body sample by sample, keeping each sample's text exactly as sent.

The text is what a rejected sample is quarantined as (nothing a client sent is lost or expanded) and what an error
detail echoes, cut short. JSON's own escapes (``\\u0000``, a lone ``\\ud800``) stay escapes in that text, so it can
always be stored, whatever the decoded value holds. Each sample is decoded by the standard library's C scanner; the
loop here only steps from one sample to the next.

Reading the body checks its whole structure and notes where each sample's text starts and ends; the decoded samples
are handed to a visitor one at a time (the request hash) and dropped. The landing decodes them again a chunk at a
time (`SyncBody.decoded`), so a large body's samples are never all held as Python objects at once: decoded, a 10 MB
body is some 30 MB of dicts and strings.
"""

from __future__ import annotations

import bisect
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

_SPACE = " \t\n\r"
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
SAMPLES_FIELD = "samples"


class SampleVisitor(Protocol):
    """Sees each sample as the body is read: `start` at each ``samples`` array (a repeated member starts over: the
    last one counts), then `add` per decoded sample, in order."""

    def start(self) -> None: ...

    def add(self, sample: Any) -> None: ...


class SyncBodyError(ValueError):
    """The body is not a JSON object with a ``samples`` array (or has too many samples): the whole request is
    refused. The message names the position or the limit, never the content."""


@dataclass(frozen=True)
class Unreadable:
    """A sample the decoder could not turn into values (an integer too long for Python, or, decoded again deeper in
    the stack than when the body was read, nesting at the recursion limit); rejected with ``reason``."""

    reason: str


@dataclass(frozen=True)
class SyncBody:
    """The body as sent and where each sample's JSON text starts and ends in it, in bytes: the body's decoded text
    is only held while it is read, and each sample's text is decoded from its own bytes when it is needed."""

    data: bytes = field(repr=False)  # a repr names no content
    starts: list[int]
    ends: list[int]

    def __len__(self) -> int:
        return len(self.starts)

    def chunks(self, max_bytes: int) -> Iterator[tuple[int, int]]:
        """``(first, stop)`` of consecutive runs of samples whose texts span at most ``max_bytes`` of the body (a
        longer sample is a run of its own), covering every sample in order."""
        first = 0
        while first < len(self.starts):
            stop = max(bisect.bisect_right(self.ends, self.starts[first] + max_bytes, lo=first), first + 1)
            yield first, stop
            first = stop

    def text_of(self, position: int) -> str:
        return self.data[self.starts[position] : self.ends[position]].decode()

    def texts_of(self, first: int, stop: int) -> list[str]:
        """The texts as sent of samples ``first`` up to ``stop``."""
        data, ends = self.data, self.ends[first:stop]
        return [data[start:end].decode() for start, end in zip(self.starts[first:stop], ends, strict=True)]

    def decoded(self, first: int, stop: int) -> list[Any]:
        """Samples ``first`` up to ``stop``, decoded (`Unreadable` where they cannot be)."""
        return decode_samples(self.texts_of(first, stop))

    @property
    def texts(self) -> list[str]:
        return self.texts_of(0, len(self))

    @property
    def samples(self) -> list[Any]:
        return self.decoded(0, len(self))


def decode_samples(texts: list[str]) -> list[Any]:
    """Samples' texts (as `SyncBody.texts_of` gives them) decoded, `Unreadable` where they cannot be."""
    samples = []
    for text in texts:
        try:
            samples.append(_decode(text, 0)[0])
        except SyncBodyError:  # the body was read whole once: only the stack can be deeper now
            samples.append(Unreadable("is nested too deeply"))
    return samples


def _in_bytes(text: str, size: int, starts: list[int], ends: list[int]) -> tuple[list[int], list[int]]:
    """Character positions in ``text`` (decoded from ``size`` bytes of UTF-8) as byte positions."""
    if len(text) == size:  # ASCII
        return starts, ends
    if len(text) + 2 == size and text.startswith("\ufeff"):  # ASCII after a byte order mark (3 bytes)
        return [at + 2 for at in starts], [at + 2 for at in ends]
    byte_starts, byte_ends = [], []
    at = byte = 0
    for start, end in zip(starts, ends, strict=True):
        byte += len(text[at:start].encode())
        byte_starts.append(byte)
        byte += len(text[start:end].encode())
        byte_ends.append(byte)
        at = end
    return byte_starts, byte_ends


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return None


# Decodes what `_SCAN` refuses for an overlong integer, to find where that value ends.
_LENIENT_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(parse_int=_int_or_none).scan_once  # type: ignore[attr-defined]


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _malformed(at: int) -> SyncBodyError:
    return SyncBodyError(f"malformed JSON at character {at}")


def _decode(text: str, at: int) -> tuple[Any, int]:
    """The value at ``at`` and the position after it. Malformed JSON or nesting past the recursion limit refuses
    the body; an integer past Python's digit limit is only that value's fault: it decodes as `Unreadable`."""
    try:
        return _SCAN(text, at)
    except StopIteration:
        raise _malformed(at) from None
    except json.JSONDecodeError as exc:
        raise _malformed(exc.pos) from None
    except RecursionError:
        raise SyncBodyError(f"value at character {at} is nested too deeply") from None
    except ValueError:
        _, end = _LENIENT_SCAN(text, at)
        return Unreadable(f"holds an integer of more than {sys.get_int_max_str_digits():,} digits"), end


def _samples(text: str, at: int, max_samples: int, visit: SampleVisitor | None) -> tuple[list[int], list[int], int]:
    """The array at ``at`` (its ``[``): where each sample starts and ends, the position after the ``]``. Each
    decoded sample goes to ``visit`` and is then dropped. The loop is kept lean: it runs once per sample."""
    starts: list[int] = []
    ends: list[int] = []
    length = len(text)
    if visit is not None:
        visit.start()
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return starts, ends, at + 1
    while True:
        if len(starts) == max_samples:
            raise SyncBodyError(f"at most {max_samples} samples per request")
        value, end = _decode(text, at)
        if visit is not None:
            visit.add(value)
        starts.append(at)
        ends.append(end)
        if end < length and text[end] in _SPACE:
            end = _skip(text, end)
        separator = text[end : end + 1]
        if separator == ",":
            at = end + 1
            if at < length and text[at] in _SPACE:
                at = _skip(text, at)
        elif separator == "]":
            return starts, ends, end + 1
        else:
            raise _malformed(end)


def parse_sync_body(body: bytes, max_samples: int, visit: SampleVisitor | None = None) -> SyncBody:
    """Read ``{"samples": [...], ...}``; other members are read and ignored, a repeated ``samples`` wins last
    (as `json.loads` does). ``visit`` sees the decoded samples as they are read."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SyncBodyError(f"the body is not UTF-8 text (byte {exc.start})") from None
    at = _skip(text, 1 if text.startswith("\ufeff") else 0)
    if not text.startswith("{", at):
        raise SyncBodyError('the body must be a JSON object with a "samples" array')
    found: SyncBody | None = None
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        at += 1
    else:
        while True:
            if not text.startswith('"', at):
                raise _malformed(at)
            key, at = _decode(text, at)
            at = _skip(text, at)
            if not text.startswith(":", at):
                raise _malformed(at)
            at = _skip(text, at + 1)
            if key == SAMPLES_FIELD and text.startswith("[", at):
                starts, ends, at = _samples(text, at, max_samples, visit)
                found = SyncBody(body, *_in_bytes(text, len(body), starts, ends))
            else:
                _, at = _decode(text, at)
                if key == SAMPLES_FIELD:
                    found = None
            at = _skip(text, at)
            if text.startswith(",", at):
                at = _skip(text, at + 1)
            elif text.startswith("}", at):
                at += 1
                break
            else:
                raise _malformed(at)
    if _skip(text, at) != len(text):
        raise _malformed(_skip(text, at))
    if found is None:
        raise SyncBodyError('the body must be a JSON object with a "samples" array')
    return found
