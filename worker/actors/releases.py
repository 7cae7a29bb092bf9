"""releases.execute: a client and all its products move to an organization of its own."""

from __future__ import annotations

from datetime import datetime, timedelta

from rules import permissions
from rules.errors import ClientNotActive, TargetMissing
from tables import accounts, clients, events, ledger, organizations, products
from tables.clients import Client
from worker.execution import Done, recheck

CLAIM_TOKEN_DAYS = 30


async def _owner_account(email: str, name: str, now: datetime) -> tuple[str, str | None]:
    """The account for `email`, created without a key if needed; a claim token if it has no key."""
    try:
        row, _ = await accounts.create(email, name, now, with_key=False)
        account_id, has_key = row["id"], False
    except accounts.EmailTaken:
        existing = await accounts.Account.select(accounts.Account.id, accounts.Account.key_hash).where(
            accounts.Account.email == email.lower()).first()
        account_id, has_key = existing["id"], existing["key_hash"] is not None
    token = None if has_key else await accounts.issue_claim_token(
        account_id, now + timedelta(days=CLAIM_TOKEN_DAYS))
    return account_id, token


async def release(op: dict, now: datetime) -> Done:
    reseller_id = op["organization_id"]
    client_id = op["params"]["client_id"]
    await recheck(op, permissions.CLIENT_MANAGE)
    client = await clients.get(reseller_id, client_id)
    if client is None:
        raise TargetMissing(f"client {client_id} is not in this reseller's portfolio")
    if client["status"] != "active":
        raise ClientNotActive(f"client {client_id} was already released")
    account_id, claim_token = await _owner_account(op["params"]["owner_email"], client["name"], now)
    org = await organizations.create(client["name"], False, "EUR", now)
    owners = await organizations.create_team(org["id"], permissions.OWNER_TEAM_NAME,
                                             permissions.ALL_PERMISSIONS, now, is_owner=True)
    await organizations.add_member(org["id"], owners["id"], account_id, now)
    await ledger.open_account(org["id"], "EUR", now)
    moved = await products.move_client_products(client_id, org["id"], now)
    await Client.update({Client.status: "released", Client.released_to: org["id"],
                         Client.released_at: now}).where(Client.id == client_id)
    result = {"organization_id": org["id"], "client_id": client_id, "account_id": account_id,
              "claim_token": claim_token, "product_ids": moved}
    public = {k: v for k, v in result.items() if k != "claim_token"}
    await events.record("client.released", reseller_id, now, operation_id=op["id"], data=public)
    for product_id in moved:
        await events.record("product.transferred", org["id"], now, product_id=product_id,
                            operation_id=op["id"],
                            data={"product_id": product_id, "from_reseller": reseller_id,
                                  "to_organization": org["id"]})
    return Done(result=result)
