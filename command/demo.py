"""Demo data for `tenure demo`: an organization, a reseller with two clients, products."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console

from rules import ledger as booking
from rules.money import Money
from rules.operations import OperationKind
from runtime.clock import clock
from runtime.settings import Settings
from tables import accounts, activity, clients, ledger, operation_activity, operations, organizations, teams
from tables.engine import transaction
from tables.operation_params import PurchaseParams

ORG_OWNER = "owner@demo.test"
RESELLER_OWNER = "reseller@demo.test"


@dataclass
class Demo:
    keys: dict[str, str] = field(default_factory=dict)  # email -> fresh API key
    organization_id: str = ""
    reseller_id: str = ""
    client_ids: list[str] = field(default_factory=list)


DEMO_CREDIT_LIMIT = 500_00


async def _owned_org(email: str, person: str, org_name: str, reseller: bool, funds: int) -> tuple[str, str]:
    now = clock.now()
    account, _ = await accounts.create(email, person, now)
    org = await organizations.open_with_owners(
        org_name, reseller, "EUR", now, owner_account_id=account.id, credit_limit=DEMO_CREDIT_LIMIT
    )  # invoices can be tried
    await ledger.post(f"demo-topup-{org.id}", booking.topup(org.id, Money.eur(funds)), now)
    return account.id, org.id


DEMO_PURCHASES = {  # organization label -> (kind, name, client index or None)
    "org": [("domain", "demo-organisation.fr", None), ("mailbox", "contact@demo-organisation.fr", None)],
    "reseller": [
        ("domain", "demo-reseller.com", None),
        ("domain", "boulangerie-martin.fr", 0),
        ("hosting", "boulangerie-martin.fr", 0),
        ("domain", "atelier-dupont.fr", 1),
    ],
}


async def _buy(account_id: str, org_id: str, kind: str, name: str, client_id: str | None) -> None:
    """A demo purchase through the real operation path (recorded, then executed once)."""
    from worker.actors import run_now

    row = operations.new_row(
        OperationKind.PURCHASE,
        org_id,
        clock.now(),
        account_id=account_id,
        params=PurchaseParams(kind=kind, name=name, years=1, payment_method="prepaid", client_id=client_id),
    )
    await operation_activity.insert_accepted(
        {**row, "idem_key": f"demo:{org_id}:{kind}:{name}"}, activity.Actor("account", account_id)
    )
    await run_now(OperationKind.PURCHASE, row["id"])


async def seed() -> Demo:
    """Creates the demo data once; on every run, issues fresh API keys to print."""
    demo = Demo()
    account_ids: dict[str, str] = {}
    async with transaction():
        fresh = await accounts.by_email(ORG_OWNER) is None
        if fresh:
            await _owned_org(ORG_OWNER, "Olivia Owner", "Demo Organization", False, 50_000)
            _, reseller = await _owned_org(RESELLER_OWNER, "Remy Reseller", "Demo Reseller", True, 200_000)
            await clients.create(reseller, "Boulangerie Martin", "contact@boulangerie.test", "crm-1001", clock.now())
            await clients.create(reseller, "Atelier Dupont", "hello@atelier.test", "crm-1002", clock.now())
        for email in (ORG_OWNER, RESELLER_OWNER):
            account = await accounts.by_email(email)
            assert account is not None  # made above, or on an earlier run
            account_ids[email] = account.id
            demo.keys[email] = await accounts.rotate_key(account.id, clock.now())
            org = (await teams.memberships_of(account.id))[0]
            if email == ORG_OWNER:
                demo.organization_id = org.organization_id
            else:
                demo.reseller_id = org.organization_id
    page = await clients.page(demo.reseller_id, clients.ClientStatus.ACTIVE, None, 10)
    demo.client_ids = [c.id for c in page]
    if fresh:
        owners = {"org": (demo.organization_id, ORG_OWNER), "reseller": (demo.reseller_id, RESELLER_OWNER)}
        for label, purchases in DEMO_PURCHASES.items():
            org_id, email = owners[label]
            for kind, name, client_index in purchases:
                client_id = demo.client_ids[client_index] if client_index is not None else None
                await _buy(account_ids[email], org_id, kind, name, client_id)
    return demo


def print_welcome(demo: Demo, base_url: str, settings: Settings) -> None:
    console = Console(soft_wrap=True)
    console.print(f"[bold]tenure demo[/bold] on {base_url}  (database {settings.database_url})")
    if not settings.secret_key and settings.is_sqlite:
        from tables.secrets_at_rest import key_file_for

        console.print(
            f"webhook secrets are encrypted with the key in {key_file_for(settings.database_url)} "
            "(made once, mode 0600): keep it with the database; `tenure backup` copies both"
        )
    console.print(f"organization {demo.organization_id}, owner {ORG_OWNER}")
    console.print(f"  API key: {demo.keys[ORG_OWNER]}")
    console.print(f"reseller {demo.reseller_id}, owner {RESELLER_OWNER}, clients {', '.join(demo.client_ids)}")
    console.print(f"  API key: {demo.keys[RESELLER_OWNER]}")
    key = demo.keys[RESELLER_OWNER]
    console.print(f"Try:  curl -s -H 'Authorization: Bearer {key}' {base_url}/v1/me")
    console.print(f"      curl -s -H 'Authorization: Bearer {key}' {base_url}/v1/resellers/{demo.reseller_id}/clients")
    console.print(f"API schema: {base_url}/schema/swagger  ·  catalog: {base_url}/v1/catalog")
