"""Responses botocore would misread: a 2xx whose body is not the JSON object the protocol promises.

botocore's JSON parser (``parsers.BaseJSONParser._parse_body_as_json``, botocore 1.44) turns a body that
is not JSON into ``{"message": body}``, which the output shape then drops: an HTML page from a proxy
parses as ``{}``, i.e. a GetItem that found nothing or a Query with no items. A body that is not
UTF-8 raises a bare ``UnicodeDecodeError`` and JSON that is not an object (``[]``, ``null``) a bare
``AttributeError``, neither of them a ``BotoCoreError``. The hook here looks at the raw body first
(botocore's ``before-parse`` event) and raises ``UnparseableResponseError``, a ``BotoCoreError``, so
every caller's existing error handling turns it into a ``SourceError``.

Imported with the first client, never by ``import confstage``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError

__all__ = ["UnparseableResponseError", "check_json_body"]


class UnparseableResponseError(BotoCoreError):  # type: ignore[misc]  # botocore ships no type information
    """A 2xx response whose body is not a JSON object; ``detail`` describes it without quoting it."""

    fmt = "{operation} answered with a body that is not a JSON object ({detail})"

    def __init__(self, *, operation: str, detail: str) -> None:
        super().__init__(operation=operation, detail=detail)
        self.detail = f"the response is not a JSON object ({detail})"


def check_json_body(operation: str, *, whole: bool) -> Callable[..., None]:
    """A ``before-parse`` hook for one JSON-protocol operation.

    The body must be UTF-8 text that starts with ``{`` and ends with ``}``; with ``whole`` it must
    parse as a JSON object too (for answers whose emptiness means "not found", like GetItem, and
    which are small: a page of a Query is up to 1 MB, where parsing twice would cost ~14 ms).
    """

    def check(response_dict: dict[str, Any], **_: Any) -> None:
        status = response_dict.get("status_code", 0)
        if not 200 <= status < 300:
            return  # an error response: botocore parses the error
        body = response_dict.get("body", b"")
        problem = _problem(body, whole=whole)
        if problem:
            headers = response_dict.get("headers") or {}
            kind = str(headers.get("content-type", "no Content-Type"))[:80]
            raise UnparseableResponseError(operation=operation, detail=f"HTTP {status}, {kind}, {problem}")

    return check


def _problem(body: object, *, whole: bool) -> str | None:
    if not isinstance(body, (bytes, bytearray)):
        return None  # a streamed body: not ours to read here
    size = f"{len(body)} bytes"
    if not body.strip():
        return "an empty body"
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return f"{size} that are not UTF-8"
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return f"{size} that are not a JSON object"
    if whole:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return f"{size} that are not JSON"
        if not isinstance(parsed, dict):
            return f"{size} that are not a JSON object"
    return None
