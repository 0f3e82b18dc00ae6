"""Every JSON request body is decoded here, once, before any handler runs (docs/adr/0004).

Litestar decodes a handler's ``data`` with ``Request.json()``; :class:`TourneeRequest` (the app's
``request_class``) replaces that with :func:`decode_json_body`, which refuses with a stable
problem code:

- ``json_malformed`` (400): not JSON, not UTF-8, or a lone UTF-16 surrogate (``"\\ud800"``);
- ``json_too_deep`` (400): arrays/objects nested deeper than :data:`MAX_JSON_DEPTH`;
- ``json_number_out_of_range`` (400): a number beyond a 64-bit integer or a double (``1e400``);
- ``text_nul_character`` (400): a NUL character (``\\u0000``) in any string or key. No column of
  either database can hold it the same way (PostgreSQL refuses it, SQLite stores it), so it is
  refused everywhere. Routes whose content must be judged item by item opt out with
  ``opt={ALLOW_NUL: True}`` (``/sync/v1/push``: a mutation's content is never a batch error).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.types import Empty

from server.errors import DomainError

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a request body (ours need 6)."""

ALLOW_NUL = "tournee_json_allow_nul"
"""Route ``opt`` key: NUL characters are left to the handler (judged per item)."""

_INT_LIMIT = 2**63
_decoder = msgspec.json.Decoder()


class BodyRefused(DomainError):
    def __init__(self, problem_code: str, /, **params: Any) -> None:
        super().__init__(problem_code, 400, **params)


def _walk(value: Any, *, allow_nul: bool) -> None:
    """Depth, integer range and NUL checks in one pass over the decoded containers."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
            if not allow_nul:
                for key in item:
                    if "\x00" in key:
                        raise BodyRefused("text_nul_character")
        elif isinstance(item, list):
            children = item
        else:
            children = (item,)
            depth -= 1
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_JSON_DEPTH:
                    raise BodyRefused("json_too_deep", limit=MAX_JSON_DEPTH)
                stack.append((child, depth + 1))
            elif isinstance(child, str):
                if not allow_nul and "\x00" in child:
                    raise BodyRefused("text_nul_character")
            elif (
                isinstance(child, int)
                and not isinstance(child, bool)
                and not -_INT_LIMIT <= child < _INT_LIMIT
            ):
                raise BodyRefused("json_number_out_of_range")


def decode_json_body(body: bytes, *, allow_nul: bool = False) -> Any:
    """The decoded body, or a :class:`BodyRefused` problem. An empty body is ``null``."""
    try:
        value = _decoder.decode(body or b"null")
    except RecursionError as exc:
        raise BodyRefused("json_too_deep", limit=MAX_JSON_DEPTH) from exc
    except UnicodeDecodeError as exc:
        raise BodyRefused("json_malformed", reason="encoding") from exc
    except msgspec.ValidationError as exc:  # "Number out of range" (1e400)
        raise BodyRefused("json_number_out_of_range") from exc
    except msgspec.DecodeError as exc:
        raise BodyRefused("json_malformed", reason="syntax") from exc
    _walk(value, allow_nul=allow_nul)
    return value


class TourneeRequest(Request[Any, Any, Any]):
    """The app's request class: JSON bodies go through :func:`decode_json_body`."""

    async def json(self) -> Any:
        if self._json is Empty:
            cached = self._connection_state.json
            if cached is not Empty:
                self._json = cached
            else:
                allow_nul = bool(self.route_handler.opt.get(ALLOW_NUL))
                body = await self.body()
                self._json = self._connection_state.json = decode_json_body(
                    body, allow_nul=allow_nul
                )
        return self._json
