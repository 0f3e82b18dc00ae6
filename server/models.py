"""Every table model, imported once so ``SQLModel.metadata`` is complete (Alembic, tests)."""

from server.accounts.models import AccessToken, User
from server.audit import AuditEvent
from server.crews.models import Borough, Crew
from server.photos.models import WorkOrderPhoto
from server.requests.models import ServiceRequest, ServiceType
from server.workorders.models import WorkOrder

__all__ = [
    "AccessToken",
    "AuditEvent",
    "Borough",
    "Crew",
    "ServiceRequest",
    "ServiceType",
    "User",
    "WorkOrder",
    "WorkOrderPhoto",
]
