"""Shared, bounded parameter types for routes."""

from typing import Annotated

from litestar.params import Parameter

from server.dbtypes import MAX_ID

DbId = Annotated[int, Parameter(ge=1, le=MAX_ID)]
