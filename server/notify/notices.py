"""Notices for the dispatch desk (SLA escalations): listed by every console, acknowledged once.

The rows are written by the jobs that raise them (server/jobs.py) and published live on the
dispatch channel at commit; this module is what a console reads when it (re)connects, and the
acknowledgement ("Vu") that takes a notice off every console.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import Actor
from server.dbtypes import utcnow
from server.errors import NotFound
from server.live import bus as live
from server.notify.models import DispatcherNotice, NoticePublic


def _public(notice: DispatcherNotice) -> NoticePublic:
    return NoticePublic.model_validate(notice, from_attributes=True)


async def list_notices(
    tx: AsyncSession, *, open_only: bool, limit: int, before_id: int | None
) -> list[NoticePublic]:
    """Newest first; ``before_id`` pages backwards."""
    query = select(DispatcherNotice).order_by(col(DispatcherNotice.id).desc()).limit(limit)
    if open_only:
        query = query.where(col(DispatcherNotice.acknowledged_at).is_(None))
    if before_id is not None:
        query = query.where(col(DispatcherNotice.id) < before_id)
    return [_public(n) for n in (await tx.execute(query)).scalars()]


async def acknowledge(tx: AsyncSession, notice_id: int, actor: Actor) -> NoticePublic:
    """Idempotent: the first dispatcher's acknowledgement is kept."""
    notice = (
        await tx.execute(
            select(DispatcherNotice).where(col(DispatcherNotice.id) == notice_id).with_for_update()
        )
    ).scalar_one_or_none()
    if notice is None:
        raise NotFound("notice", notice_id)
    if notice.acknowledged_at is None:
        notice.acknowledged_at = utcnow()
        notice.acknowledged_by = actor.user_id
        tx.add(notice)
        await tx.flush()
        live.publish(tx, live.DISPATCH_CHANNEL, "notice_acknowledged", {"id": notice_id})
    return _public(notice)
