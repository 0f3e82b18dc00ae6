"""Open311 documents in XML (xml.etree.ElementTree, never string concatenation) and JSON.

Handlers build plain Python structures (dicts with keys in the spec's order, lists, scalars);
this module turns the same structure into either format:

* XML: a list becomes one child per item, named by ``LIST_ITEM_TAGS`` (``attributes`` →
  ``attribute``); ``None`` becomes an empty element (every documented key is present);
  booleans are ``true``/``false``; characters XML 1.0 cannot carry are dropped.
* JSON: the structure as is (ids and codes are already strings; booleans stay booleans).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any, Literal

Format = Literal["xml", "json"]

XML_MEDIA_TYPE = "text/xml"  # Litestar appends "; charset=utf-8" to text/* types
JSON_MEDIA_TYPE = "application/json; charset=utf-8"

LIST_ITEM_TAGS = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

# XML 1.0 Char production: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def media_type(fmt: Format) -> str:
    return XML_MEDIA_TYPE if fmt == "xml" else JSON_MEDIA_TYPE


def w3c(moment: datetime | None) -> str | None:
    """UTC, second precision, with a ``Z``: what every Open311 client parses."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return w3c(value)
    return _NOT_XML_CHAR.sub("", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _append(element, key, child)
    else:
        element.text = _text(value)


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    node = ET.SubElement(parent, tag)
    if isinstance(value, list):
        item_tag = LIST_ITEM_TAGS.get(tag, "item")
        for item in value:
            _fill(ET.SubElement(node, item_tag), item)
    else:
        _fill(node, value)


def to_xml(
    root_tag: str, content: dict[str, Any] | list[Any], item_tag: str | None = None
) -> bytes:
    """``content`` is a dict (the root's children) or a list of items named ``item_tag``."""
    root = ET.Element(root_tag)
    if isinstance(content, list):
        for item in content:
            _fill(ET.SubElement(root, item_tag or "item"), item)
    else:
        _fill(root, content)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return w3c(value)
    raise TypeError(type(value).__name__)


def to_json(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, default=_json_default).encode("utf-8")


def render(
    fmt: Format, root_tag: str, content: dict[str, Any] | list[Any], item_tag: str | None = None
) -> bytes:
    return to_xml(root_tag, content, item_tag) if fmt == "xml" else to_json(content)


def errors_document(fmt: Format, errors: list[tuple[int, str]]) -> bytes:
    """``<errors><error><code/><description/></error></errors>`` or its JSON array."""
    items = [{"code": code, "description": description} for code, description in errors]
    return render(fmt, "errors", items, "error")
