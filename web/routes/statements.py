"""An organization's ledger lines with running balance and owed, and its monthly statements."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

import jinja2
from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from rules import billing, permissions
from rules.money import Money
from tables import transactions
from web import listing
from web.access import Account, access
from web.csv_stream import cell, csv_export
from web.schemas.billing import TransactionOut, TransactionPage
from web.schemas.common import MoneyIO

TRANSACTION_CSV = [
    "id",
    "created_at",
    "kind",
    "book",
    "amount",
    "currency",
    "balance",
    "owed",
    "operation_id",
    "product_id",
    "product_kind",
    "client_id",
]
HTML = "text/html"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


def _out(line: dict, after: billing.Position) -> TransactionOut:
    currency = line["currency"]
    return TransactionOut(
        id=line["id"],
        created_at=line["created_at"],
        kind=line["kind"],
        book=line["book"],
        amount=MoneyIO(amount=line["amount"], currency=currency),
        balance=MoneyIO(amount=after.balance, currency=currency),
        owed=MoneyIO(amount=after.owed, currency=currency),
        operation_id=line["operation_id"],
        product_id=line["product_id"],
        product_kind=line["product_kind"],
        client_id=line["client_id"],
    )


async def _with_positions(org_id: str, batches: AsyncIterator[list[dict]]) -> AsyncIterator[list[dict]]:
    """Each batch's lines with the balance and owed after each, carried from batch to batch."""
    position = None
    async for rows in batches:
        if position is None:
            position = await transactions.position_before_line(org_id, rows[0])
        annotated = []
        for line, after in billing.running(position, rows):
            annotated.append({**line, "balance": after.balance, "owed": after.owed})
            position = after
        yield annotated


@get("/v1/organizations/{org_id:str}/billing/transactions", tags=["billing"])
async def list_transactions(
    request: Request,
    account: Account,
    org_id: FromPath[str],
    since: Annotated[datetime | None, QueryParameter(description="RFC 3339; booked at or after")] = None,
    until: Annotated[datetime | None, QueryParameter(description="RFC 3339; booked before")] = None,
    after: Annotated[str | None, QueryParameter(max_length=2000, description="the previous page's next_cursor")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> TransactionPage:
    """The organization's ledger lines, oldest first: top-ups, charges per product and operation
    (purchases, renewals, restore fees apart), settlements; each with the prepaid balance and
    the amount owed after it (needs `billing:view`). With `Accept: text/csv`, all of them."""
    await access(account, org_id, permissions.BILLING_VIEW)
    since, until = listing.aware("since", since), listing.aware("until", until)
    keyset, sort_name = listing.keyset_for(transactions.SORTS, None, None, after, default="created_at")
    if listing.wants_csv(request):
        return csv_export(
            "transactions.csv",
            TRANSACTION_CSV,
            _with_positions(org_id, transactions.batches(org_id, since, until, keyset)),
            lambda rows: ([r[c] for c in TRANSACTION_CSV] for r in rows),
        )
    rows, cursor = listing.cut(
        await transactions.page(org_id, since, until, keyset, limit + 1), limit, keyset, sort_name
    )
    if not rows:
        return TransactionPage(items=[], next_cursor=None)
    start = await transactions.position_before_line(org_id, rows[0])
    return TransactionPage(
        items=[_out(line, after) for line, after in billing.running(start, rows)], next_cursor=cursor
    )


def _statement_csv(month: str, body: dict) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["section", "client_id", "client_name", "kind", "amount", "currency"])
    for total in body["totals"]:
        writer.writerow(["total", "", "", total["kind"], total["total"]["amount"], body["currency"]])
    for client in body["clients"]:
        for total in client["totals"]:
            writer.writerow(
                [
                    "client",
                    client["client_id"] or "",
                    cell(client["name"]),
                    total["kind"],
                    total["total"]["amount"],
                    body["currency"],
                ]
            )
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="statement-{month}.csv"'},
    )


@get("/v1/organizations/{org_id:str}/billing/statements/{month:str}", tags=["billing"])
async def statement(request: Request, account: Account, org_id: FromPath[str], month: FromPath[str]) -> Response:
    """A month's statement (YYYY-MM, UTC): opening and closing balance and owed, totals per kind
    of line, and charges per client and product kind (what a reseller re-invoices to each
    client). JSON; `Accept: text/csv` for CSV; `Accept: text/html` for a printable page."""
    found = await access(account, org_id, permissions.BILLING_VIEW)
    start, end = billing.month_bounds(month)
    currency = found.org.currency
    sums = await transactions.month_sums(org_id, start, end)
    made = billing.statement(currency, await transactions.position_at(org_id, start), sums)
    names = await transactions.client_names(sorted({c for c in made.by_client if c}))
    body = {
        "organization_id": org_id,
        "month": month,
        "from": start.isoformat(),
        "to": end.isoformat(),
        **made.to_dict(names),
    }
    wanted = request.accept.best_match(["application/json", "text/csv", HTML], default="application/json")
    if wanted == "text/csv":
        return _statement_csv(month, body)
    if wanted == HTML:
        page = TEMPLATES.get_template("statement.html").render(
            statement=body, organization=found.org, money=lambda m: str(Money(m["amount"], m["currency"]))
        )
        return Response(page, media_type=HTML)
    return Response(body)
