"""Citizen push subscriptions, the push outbox, and dispatcher notices.

A ``PushSubscription`` is one browser's PushSubscription bound to one service request (the
citizen holding its tracking token subscribed). A ``PushMessage`` is one notification for one
subscription, written in the same transaction as the change it reports and sent later by the
delivery job (server/notify/jobs.py). A ``DispatcherNotice`` is a durable notice for the
dispatch desk (an SLA escalation), published live when server/live/bus.py is there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.dbtypes import JSONDict, UTCDateTime, utcnow

# What a citizen last saw of a request: received -> scheduled -> completed | cancelled.
CITIZEN_STATES = ("received", "scheduled", "completed", "cancelled")
# Kinds of notification: a citizen state, or "reopened".
KINDS = (*CITIZEN_STATES, "reopened")
# pending -> delivered | superseded (a newer one for the same request) | gone (404/410)
#         | failed (refused, or out of attempts) | expired (older than the TTL)
MESSAGE_STATES = ("pending", "delivered", "superseded", "gone", "failed", "expired")
FINAL_STATES = MESSAGE_STATES[1:]


class PushSubscription(SQLModel, table=True):
    __tablename__ = "push_subscription"
    __table_args__ = (
        UniqueConstraint("request_id", "endpoint_hash", name="uq_push_sub_request_endpoint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", index=True)
    endpoint: str = Field(max_length=2048)
    endpoint_hash: str = Field(max_length=64, index=True)  # sha256 hex of the endpoint
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=64)
    language: str = Field(default="fr", max_length=2)
    # the citizen state last notified (deduplicates: a reassignment is not news)
    last_state: str | None = Field(default=None, max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def as_webpush(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class PushMessage(SQLModel, table=True):
    """The push outbox: one row per notification per subscription."""

    __tablename__ = "push_outbox"
    __table_args__ = (
        Index("ix_push_outbox_due", "state", "next_attempt_at"),
        Index("ix_push_outbox_sub_request", "subscription_id", "request_id", "state"),
        Index("ix_push_outbox_finished", "finished_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int | None = Field(
        default=None, foreign_key="push_subscription.id", ondelete="SET NULL"
    )
    request_id: int = Field(foreign_key="service_request.id", index=True)
    kind: str = Field(max_length=12)
    language: str = Field(default="fr", max_length=2)
    # what the text is made from, frozen at the time of the change (service names, outcome...)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict)
    urgency: str = Field(default="normal", max_length=10)
    quiet_exempt: bool = Field(default=False)  # the subscription confirmation only
    state: str = Field(default="pending", max_length=12)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=80)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_by: str | None = Field(default=None, max_length=80)


class DispatcherNotice(SQLModel, table=True):
    """A notice for the dispatch desk, kept durably (and published live when possible)."""

    __tablename__ = "dispatcher_notice"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)  # "sla_overdue"
    work_order_id: int | None = Field(default=None, foreign_key="work_order.id", index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # a dispatcher saw it ("Vu"): it leaves every console's list of open notices
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: int | None = Field(default=None, foreign_key="user_account.id")


# --- API types -------------------------------------------------------------------------------


class PushKeys(SQLModel):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=64)


class BrowserSubscription(SQLModel):
    """``PushSubscription.toJSON()`` as the browser gives it."""

    endpoint: str = Field(min_length=1, max_length=2048)
    expirationTime: float | None = Field(default=None, ge=0, le=1e15)
    keys: PushKeys


class SubscribeBody(SQLModel):
    subscription: BrowserSubscription
    language: Literal["fr", "en"] | None = None


class SubscriptionPublic(SQLModel):
    language: str
    created: bool  # False when this browser was already subscribed (keys/language refreshed)


class VapidPublicKey(SQLModel):
    public_key: str  # base64url, the applicationServerKey for pushManager.subscribe()


class NoticePublic(SQLModel):
    id: int
    kind: str
    work_order_id: int | None
    data: dict[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None


class NoticePage(SQLModel):
    items: list[NoticePublic]
