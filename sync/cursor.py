"""The pull cookie: an opaque, versioned cursor (pure standard library).

The device sends it back unchanged; anything unreadable, of another version, for another crew or
too old gives ``None`` and the server answers with a full resync (``reset: true``).

The cookie is signed (HMAC-SHA256 with a key derived from the installation secret) over its
payload *and the client_id it was issued to*: a forged, tampered or other device's cookie does
not verify and is never trusted as a cursor (docs/adr/0005). Wire form:
``base64url(json payload) "." base64url(first 16 bytes of the tag)``.

Fields:
- ``seq``: the change cursor. Rows whose ``change_seq >= seq`` may be unseen (docs/adr/0011).
- ``at``: the server time of the pull that produced the cookie (epoch seconds): the lower bound
  of the "aged out of the tail" window for the next pull.
- ``crew``: the crew whose scope was synced.
- ``ref``: a digest of the reference data sent (service types); a change resends it.
- paging state of an unfinished pull: ``after`` (last work-order id sent), ``next_seq`` /
  ``next_at`` (the cursor the pull will end at, taken from its first page), ``lmid`` (the ack
  watermark read with the first page), ``full`` (the pull is a full sync), ``exits_done``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, replace

__all__ = ["COOKIE_VERSION", "Cookie", "cookie_key", "decode_cookie", "encode_cookie"]

COOKIE_VERSION = 2  # 2: signed and bound to the client_id
_TAG_BYTES = 16
_MAX_LEN = 2000


@dataclass(frozen=True, slots=True)
class Cookie:
    seq: int
    at: float
    crew: int
    ref: str
    # paging state (an unfinished pull)
    after: int | None = None
    next_seq: int | None = None
    next_at: float | None = None
    lmid: int | None = None
    full: bool = False
    phase: int = 0

    @property
    def paging(self) -> bool:
        return self.after is not None

    def finished(self) -> Cookie:
        """The cookie of a pull that has sent its last page."""
        assert self.next_seq is not None and self.next_at is not None
        return Cookie(seq=self.next_seq, at=self.next_at, crew=self.crew, ref=self.ref)

    def with_page(self, after: int, phase: int) -> Cookie:
        return replace(self, after=after, phase=phase)


def cookie_key(secret: str) -> bytes:
    """The signing key of pull cookies, derived from the installation secret (its own domain:
    the secret signs nothing else this way)."""
    return hmac.new(secret.encode(), b"tournee sync pull cookie", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _tag(key: bytes, client_id: str, payload: str) -> str:
    message = f"{client_id}\n{payload}".encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES])


def encode_cookie(cookie: Cookie, key: bytes, client_id: str) -> str:
    data = {"v": COOKIE_VERSION, **{k: v for k, v in asdict(cookie).items() if v is not None}}
    payload = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_tag(key, client_id, payload)}"


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        return None
    return value


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e11:
        return None
    return float(value)


def decode_cookie(text: str | None, key: bytes, client_id: str) -> Cookie | None:
    """The cookie, or None when it cannot be trusted as a cursor (then: full resync): unsigned,
    signed for another client_id, tampered with, or unreadable."""
    if not text or len(text) > _MAX_LEN or not text.isascii():
        return None
    payload, dot, tag = text.partition(".")
    if not dot or not hmac.compare_digest(tag, _tag(key, client_id, payload)):
        return None
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("v") != COOKIE_VERSION:
        return None
    seq, at, crew, ref = (
        _int(data.get("seq")),
        _num(data.get("at")),
        _int(data.get("crew")),
        data.get("ref"),
    )
    if seq is None or at is None or crew is None or not isinstance(ref, str) or len(ref) > 64:
        return None
    after = data.get("after")
    if after is None:
        return Cookie(seq=seq, at=at, crew=crew, ref=ref)
    paging = (
        _int(after),
        _int(data.get("next_seq")),
        _num(data.get("next_at")),
        _int(data.get("lmid")),
        _int(data.get("phase")),
    )
    full = data.get("full", False)
    if any(v is None for v in paging) or not isinstance(full, bool):
        return None
    return Cookie(
        seq=seq,
        at=at,
        crew=crew,
        ref=ref,
        after=paging[0],
        next_seq=paging[1],
        next_at=paging[2],
        lmid=paging[3],
        full=full,
        phase=paging[4] or 0,
    )
