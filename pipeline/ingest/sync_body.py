"""Reading a device sync's JSON body sample by sample, keeping each sample's text exactly as sent.

The text is what a rejected sample is quarantined as (nothing a client sent is lost or expanded) and what an error
detail echoes, cut short. JSON's own escapes (``\\u0000``, a lone ``\\ud800``) stay escapes in that text, so it can
always be stored, whatever the decoded value holds. Each sample is decoded by the standard library's C scanner; the
loop here only steps from one sample to the next.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_SPACE = " \t\n\r"
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
SAMPLES_FIELD = "samples"


class SyncBodyError(ValueError):
    """The body is not a JSON object with a ``samples`` array (or has too many samples): the whole request is
    refused. The message names the position or the limit, never the content."""


@dataclass(frozen=True)
class Unreadable:
    """A sample the decoder could not turn into values (an integer too long for Python); rejected with ``reason``."""

    reason: str


@dataclass(frozen=True)
class SyncBody:
    samples: list[Any]  # decoded samples, `Unreadable` where decoding failed
    texts: list[str]  # each sample's JSON text as sent


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return None


# Decodes what `_DECODER` refuses for an overlong integer, to find where that sample ends.
_LENIENT_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(parse_int=_int_or_none).scan_once  # type: ignore[attr-defined]


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _malformed(at: int) -> SyncBodyError:
    return SyncBodyError(f"malformed JSON at character {at}")


def _value(text: str, at: int) -> tuple[Any, int]:
    try:
        value, end = _SCAN(text, at)
    except StopIteration:
        raise _malformed(at) from None
    except json.JSONDecodeError as exc:
        raise _malformed(exc.pos) from None
    except RecursionError:
        raise SyncBodyError(f"value at character {at} is nested too deeply") from None
    return value, end


def _sample(text: str, at: int) -> tuple[Any, int]:
    try:
        return _SCAN(text, at)
    except StopIteration:
        raise _malformed(at) from None
    except json.JSONDecodeError as exc:
        raise _malformed(exc.pos) from None
    except RecursionError:
        raise SyncBodyError(f"value at character {at} is nested too deeply") from None
    except ValueError:  # an integer past Python's digit limit: this sample is rejected, not the body
        _, end = _LENIENT_SCAN(text, at)
        return Unreadable(f"holds an integer of more than {sys.get_int_max_str_digits():,} digits"), end


def _samples(text: str, at: int, max_samples: int) -> tuple[list[Any], list[str], int]:
    """The array at ``at`` (its ``[``): decoded samples, their texts, the position after its ``]``. The loop is
    kept lean: it runs once per sample."""
    samples: list[Any] = []
    texts: list[str] = []
    length = len(text)
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return samples, texts, at + 1
    while True:
        if len(samples) == max_samples:
            raise SyncBodyError(f"at most {max_samples} samples per request")
        value, end = _sample(text, at)
        samples.append(value)
        texts.append(text[at:end])
        if end < length and text[end] in _SPACE:
            end = _skip(text, end)
        separator = text[end : end + 1]
        if separator == ",":
            at = end + 1
            if at < length and text[at] in _SPACE:
                at = _skip(text, at)
        elif separator == "]":
            return samples, texts, end + 1
        else:
            raise _malformed(end)


def parse_sync_body(body: bytes, max_samples: int) -> SyncBody:
    """Decode ``{"samples": [...], ...}``; other members are read and ignored, a repeated ``samples`` wins last
    (as `json.loads` does)."""
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
            key, at = _value(text, at)
            at = _skip(text, at)
            if not text.startswith(":", at):
                raise _malformed(at)
            at = _skip(text, at + 1)
            if key == SAMPLES_FIELD and text.startswith("[", at):
                samples, texts, at = _samples(text, at, max_samples)
                found = SyncBody(samples, texts)
            else:
                _, at = _value(text, at)
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
