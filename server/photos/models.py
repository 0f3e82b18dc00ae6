"""Photo evidence attached to work orders.

``WorkOrderPhoto`` is the reference a crew creates (offline, keyed by a UUID made on the
device) from a sync mutation: it names the photo's sha256, which may arrive before or after the
bytes. The bytes and their derivatives are tracked by the upload pipeline (issue 4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.dbtypes import JSONList, UTCDateTime, matching, utcnow


class WorkOrderPhoto(SQLModel, table=True):
    __tablename__ = "work_order_photo"
    __table_args__ = (Index("ix_wo_photo_wo", "work_order_id"),)

    id: str = Field(primary_key=True, max_length=36)  # UUID made on the device
    work_order_id: int = Field(foreign_key="work_order.id")
    sha256: str = Field(max_length=64, index=True)
    kind: str = Field(default="after", max_length=10)  # before | after | other
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # device clock
    captured_lat: float | None = None
    captured_lon: float | None = None
    captured_accuracy_m: float | None = None
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # evidence checks (distance from the site, taken long before completion, ...)
    distance_m: float | None = None
    flags: list[Any] = Field(default_factory=list, sa_type=JSONList)


class RequestPhoto(SQLModel, table=True):
    """A photo a citizen sent with a service request (an Open311 multipart file part). Kept here,
    not in server/open311, so photos can tell a published photo without importing Open311."""

    __tablename__ = "open311_request_photo"
    __table_args__ = (
        UniqueConstraint("service_request_id", "sha256", name="uq_open311_photo"),
        Index("ix_open311_photo_sha", "sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service_request_id: int = Field(foreign_key="service_request.id", index=True)
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Photo(SQLModel, table=True):
    """An original the server holds and has validated, keyed by the sha256 of its bytes."""

    __tablename__ = "photo"

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int
    mime: str = Field(max_length=20)
    width: int  # as displayed (orientation applied)
    height: int
    orientation: int = Field(default=1)
    exif_lat: float | None = None
    exif_lon: float | None = None
    exif_taken_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    uploaded_by: int | None = Field(default=None, foreign_key="user_account.id")
    # set by the derivatives job once display.jpg and thumb.jpg are in the store
    derivatives_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # a dispatcher withdrew the public copies (a face, a licence plate): never made again
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_by: int | None = Field(default=None, foreign_key="user_account.id")
    withdrawn_reason: str | None = Field(default=None, max_length=500)
    # the retention ran out (TOURNEE_PHOTO_RETENTION_DAYS): the bytes are gone, the row stays
    # as the record of what the evidence was
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PhotoUpload(SQLModel, table=True):
    """A resumable upload in progress (tus model): bytes [0, offset) are in the store.

    One session per photo *and uploader*: only its uploader (or a dispatcher) may read, append
    to or abandon it, so declaring someone else's sha256 gives a session of one's own, never
    theirs. Whoever completes first records the photo; the other completes as "already held".
    """

    __tablename__ = "photo_upload"
    __table_args__ = (UniqueConstraint("sha256", "user_id", name="uq_photo_upload_sha256_user"),)

    id: str = Field(primary_key=True, max_length=32)  # uuid4 hex, also the store key
    sha256: str = Field(max_length=64, index=True)  # one upload in progress per photo and user
    length: int
    offset: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id")


class PhotoJob(SQLModel, table=True):
    """Durable work for the derivatives job (claimed with FOR UPDATE SKIP LOCKED)."""

    __tablename__ = "photo_job"
    __table_args__ = (Index("ix_photo_job_pending", "status", "run_after"),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, foreign_key="photo.sha256")
    kind: str = Field(default="derivatives", max_length=20)
    status: str = Field(default="pending", max_length=10)  # pending | done | failed
    attempts: int = Field(default=0)
    run_after: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WorkOrderEvidence(SQLModel, table=True):
    """The photo evidence a completed work order still lacks (per ServiceType.evidence_required).

    ``pending`` from completion until ``due_at`` (the photos may still be uploading), then
    ``flagged`` by the check_missing_photos job; ``complete`` once every required kind is there.
    """

    __tablename__ = "work_order_evidence"
    __table_args__ = (Index("ix_wo_evidence_status_due", "status", "due_at"),)

    work_order_id: int = Field(primary_key=True, foreign_key="work_order.id")
    required: list[Any] = Field(default_factory=list, sa_type=JSONList)
    missing: list[Any] = Field(default_factory=list, sa_type=JSONList)
    status: str = Field(default="pending", max_length=10)  # pending | flagged | complete
    completed_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    flagged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --------------------------------------------------------------------------- API shapes

SHA256_PATTERN = r"^[0-9a-f]{64}$"


class UploadCreate(SQLModel):
    sha256: str = Field(min_length=64, max_length=64, schema_extra=matching(SHA256_PATTERN))
    length: int = Field(ge=1, le=2**40)


class WithdrawBody(SQLModel):
    reason: str = Field(min_length=1, max_length=500)


class UploadStatus(SQLModel):
    id: str | None  # None when the server already had the photo (nothing to upload)
    sha256: str
    length: int
    offset: int
    complete: bool


class PhotoUrls(SQLModel):
    display: str
    thumb: str


class PhotoPublic(SQLModel):
    sha256: str
    size_bytes: int
    mime: str
    width: int
    height: int
    orientation: int
    exif_lat: float | None
    exif_lon: float | None
    exif_taken_at: datetime | None
    uploaded_at: datetime
    derivatives_ready: bool
    urls: PhotoUrls
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None
    purged_at: datetime | None = None


class PhotoVerification(SQLModel):
    sha256: str
    ok: bool
    actual_sha256: str | None
    size_bytes: int | None


class EvidencePhoto(SQLModel):
    id: str
    sha256: str
    kind: str
    captured_at: datetime | None
    captured_lat: float | None
    captured_lon: float | None
    captured_accuracy_m: float | None
    created_at: datetime
    distance_m: float | None
    flags: list[str]
    flag_labels: list[str]
    uploaded: bool
    photo: PhotoPublic | None
    original_url: str


class WorkOrderEvidencePublic(SQLModel):
    work_order_id: int
    required: list[str]
    missing: list[str]
    status: str  # not_required | open (not completed yet) | pending | flagged | complete
    flagged_at: datetime | None
    due_at: datetime | None
    photos: list[EvidencePhoto]
