"""Shared route parameter types: bounded ids, and the app's named dependencies.

Litestar 2.25 deprecates dependencies inferred from a parameter's name (they stop working in
Litestar 3): handlers declare them with these aliases instead (``tx: Tx``; ``actor: CurrentActor``
from server/accounts/auth.py, ``store: Store`` from server/photos/store.py).
"""

from typing import Annotated

from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.params import Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import Database
from server.dbtypes import MAX_ID
from server.settings import Settings

DbId = Annotated[int, Parameter(ge=1, le=MAX_ID)]
QueryDbId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]  # an optional id filter

Tx = NamedDependency[AsyncSession]  # the request's transaction (server/db.py provide_tx)
Db = NamedDependency[Database]
AppSettings = NamedDependency[Settings]
Channels = NamedDependency[ChannelsPlugin]
