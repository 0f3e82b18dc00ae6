"""Every table model, imported once so ``SQLModel.metadata`` is complete (Alembic, tests)."""

from server.accounts.models import AccessToken, StreamTicket, User
from server.audit import AuditEvent
from server.city.models import Borough
from server.crews.models import Crew
from server.jobs import JobRun
from server.notify.models import DispatcherNotice, PushMessage, PushSubscription
from server.open311.models import (
    Open311ApiKey,
    Open311RequestExtra,
    Open311ServiceAttribute,
)
from server.photos.models import (
    Photo,
    PhotoJob,
    PhotoUpload,
    RequestPhoto,
    WorkOrderEvidence,
    WorkOrderPhoto,
)
from server.ratelimit import RateLimitWindow
from server.requests.models import ServiceRequest, ServiceType
from server.syncapi.models import CrewExit, SyncClient, SyncConflict, SyncCounter, SyncMutation
from server.workorders.models import MaterialEntry, WorkOrder, WorkOrderNote

__all__ = [
    "AccessToken",
    "AuditEvent",
    "Borough",
    "Crew",
    "CrewExit",
    "DispatcherNotice",
    "JobRun",
    "MaterialEntry",
    "Open311ApiKey",
    "Open311RequestExtra",
    "Open311ServiceAttribute",
    "Photo",
    "PhotoJob",
    "PhotoUpload",
    "PushMessage",
    "PushSubscription",
    "RateLimitWindow",
    "RequestPhoto",
    "ServiceRequest",
    "ServiceType",
    "StreamTicket",
    "SyncClient",
    "SyncConflict",
    "SyncCounter",
    "SyncMutation",
    "User",
    "WorkOrder",
    "WorkOrderEvidence",
    "WorkOrderNote",
    "WorkOrderPhoto",
]
