"""One guard for every piece of text a request carries: path, query string, JSON body, form.

PostgreSQL text cannot hold NUL (a query with one fails: a 500), and an unpaired UTF-16
surrogate (JSON's "\\ud800") is not Unicode text at all: no UTF-8 encoder, database driver or
strict webhook receiver takes it. Both are refused here, on the decoded text, however the
request spelled them (raw byte, `%00`, `\\u0000`), before any route or query sees them.

A JSON body must also be something Python reads as JSON without a generic error: UTF-8
(RFC 8259; a UTF-16 body would hide its escapes from any byte-level check) and no number over
Python's 4300-digit int limit. Those answer `malformed_json` like any other broken JSON.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Any, NamedTuple
from urllib.parse import parse_qsl


class Refusal(NamedTuple):
    status: int
    code: str
    detail: str


NOT_TEXT = Refusal(
    422, "invalid_character", "text must be Unicode without NUL characters or unpaired surrogates"
)


def is_text(value: str) -> bool:
    """Whether `value` can be stored and sent on as text."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


def check_target(path: str, query: bytes) -> Refusal | None:
    """The decoded path and every decoded query name and value."""
    if not is_text(path):
        return NOT_TEXT
    return None if _form_is_text(query) else NOT_TEXT


def check_body(body: bytes, content_type: str | None) -> Refusal | None:
    """The body as the app will read it: JSON (also without a content type, as the framework
    parses it), an urlencoded form, or raw bytes for anything else."""
    kind = _media_type(content_type)
    if kind is None or kind == "application/json" or kind.endswith("+json"):
        return _check_json(body) if body else None
    if kind == "application/x-www-form-urlencoded":
        return None if _form_is_text(body) else NOT_TEXT
    return NOT_TEXT if b"\x00" in body else None  # multipart fields are raw bytes


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    header = Message()
    header["content-type"] = content_type
    return header.get_content_type()


def _form_is_text(raw: bytes) -> bool:
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return all(is_text(name) and is_text(value) for name, value in pairs)


def _check_json(body: bytes) -> Refusal | None:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Refusal(400, "malformed_json", "request body is not UTF-8 JSON")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None  # the route that reads the body answers malformed_json itself
    except ValueError:  # e.g. an integer over the 4300-digit limit
        return Refusal(400, "malformed_json", "request body holds a number too long to read")
    return None if _all_text(document) else NOT_TEXT


def _all_text(document: Any) -> bool:
    """Every key and string in a parsed JSON document (depth is already bounded)."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not is_text(value):
                return False
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return True
