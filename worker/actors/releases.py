"""releases.execute: a client and all its products move to an organization of its own.

The new organization has an Owner team with nobody in it: it is held by a one-time claim
until the client's owner presents the token (POST /v1/accounts/claim). No account is chosen
by e-mail, since e-mails are not verified.
"""

from __future__ import annotations

from datetime import datetime

from rules import claims as claim_rules
from rules import permissions
from rules.billing import SANDBOX_CREDIT_LIMIT
from rules.errors import ClientNotActive, TargetMissing
from rules.lifecycle import rfc3339
from tables import claims, clients, events, operation_params, organizations
from tables import event_payloads as payloads
from tables.operation_params import ReleaseParams
from tables.operations import OperationRecord
from worker.execution import Done, recheck


async def release(op: OperationRecord, now: datetime) -> Done:
    reseller_id = op.organization_id
    params = operation_params.read(op, ReleaseParams)
    client_id = params.client_id
    await recheck(op, permissions.CLIENT_MANAGE)
    client = await clients.find(reseller_id, client_id)
    if client is None:
        raise TargetMissing(f"client {client_id} is not in this reseller's portfolio")
    if client.status != clients.ClientStatus.ACTIVE:
        raise ClientNotActive(f"client {client_id} was already released")
    reseller = await organizations.find(reseller_id)
    assert reseller is not None  # organizations are never deleted
    # A sandbox's client leaves for a sandbox of its own, its clock where the reseller's stands.
    org = await organizations.open_with_owners(
        client.name,
        False,
        reseller.currency,
        now,
        sandbox=reseller.sandbox,
        credit_limit=SANDBOX_CREDIT_LIMIT if reseller.sandbox else 0,
    )
    moved = await clients.move_client_products(client_id, org.id, now)
    await clients.mark_released(client_id, org.id, now)
    days = params.claim_days if params.claim_days is not None else claim_rules.DEFAULT_CLAIM_DAYS
    claim, _ = await claims.issue(
        org.id,
        reseller_id,
        client_id,
        params.owner_email,
        now,
        claim_rules.expires_at(now, days),
        operation_id=op.id,
    )
    result = {
        "organization_id": org.id,
        "client_id": client_id,
        "product_ids": moved,
        "claim": {"status": claim_rules.ClaimStatus.PENDING.value, "expires_at": rfc3339(claim.expires_at)},
    }
    await events.record(
        "client.released",
        reseller_id,
        now,
        operation_id=op.id,
        data=payloads.ClientReleased(
            organization_id=org.id,
            client_id=client_id,
            product_ids=moved,
            claim=payloads.ClaimData(status=result["claim"]["status"], expires_at=result["claim"]["expires_at"]),
        ),
    )
    for product_id in moved:
        await events.record(
            "product.transferred",
            org.id,
            now,
            product_id=product_id,
            operation_id=op.id,
            data=payloads.ProductTransferred(product_id=product_id, from_reseller=reseller_id, to_organization=org.id),
        )
    return Done(result=result)
