"""clients.upsert: a reseller's back office creates or updates a client by its external_ref."""

from __future__ import annotations

from datetime import datetime

from rules import permissions
from rules.errors import ClientNotActive
from tables import clients, operation_params
from tables.operation_params import ClientUpsertParams
from tables.operations import OperationRecord
from worker.execution import Done, recheck


async def upsert_client(op: OperationRecord, now: datetime) -> Done:
    params = operation_params.read(op, ClientUpsertParams)
    reseller_id = op.organization_id
    await recheck(op, permissions.CLIENT_MANAGE)
    existing = await clients.by_external_ref(reseller_id, params.external_ref)
    if existing is None:
        row = await clients.create(reseller_id, params.name, params.email, params.external_ref, now)
        client_id, created = row.id, True
    else:
        if existing.status != clients.ClientStatus.ACTIVE:
            raise ClientNotActive(f"client {existing.id} ({params.external_ref}) was released")
        await clients.rename(existing.id, params.name, params.email)
        client_id, created = existing.id, False
    result = {"client_id": client_id, "external_ref": params.external_ref, "created": created}
    return Done(result=result)
