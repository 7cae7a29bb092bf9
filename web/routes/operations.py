"""An organization's own operations, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Request, get
from litestar.params import FromPath, FromQuery, Parameter

from rules import permissions
from tables import operation_lists, operations
from tables.operations import OperationRecord
from web import listing
from web.accept import operation_out
from web.access import Account, access
from web.csv_stream import csv_export
from web.schemas.operations import OperationPage

OPERATION_CSV = ["id", "kind", "status", "error_code", "product_id", "created_at", "finished_at"]


@get("/v1/organizations/{org_id:str}/operations", tags=["operations"])
async def list_operations(
    request: Request,
    account: Account,
    org_id: FromPath[str],
    kind: Annotated[
        str | None,
        Parameter(
            min_length=1,
            max_length=20,
            pattern=r"^[a-z_]+$",
            description="purchase, renewal, transfer, release, topup, client_upsert, ...",
        ),
    ] = None,
    status: FromQuery[Literal["pending", "running", "succeeded", "failed"] | None] = None,
    since: Annotated[datetime | None, Parameter(description="RFC 3339; created at or after")] = None,
    count: Annotated[bool, Parameter(description="also report `total`, every match")] = False,
    after: Annotated[str | None, Parameter(max_length=2000, description="the previous page's next_cursor")] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> OperationPage:
    """The organization's operations, newest first, for members with `org:view`; only the kinds
    the caller may read are listed (purchases, renewals and transfers need `product:view`,
    releases and client upserts `client:manage`). A release's claim token is never listed:
    it is shown once, by `GET /v1/operations/{id}`. With `Accept: text/csv`, all of them as CSV."""
    found = await access(account, org_id, permissions.ORG_VIEW)
    hidden = permissions.operation_kinds_hidden(found.granted)
    if kind in hidden:
        found.require(permissions.needed_to_read(kind))
    wanted = operation_lists.OrgFilter(
        org_id, kind=kind, status=status, since=listing.aware("since", since), hidden_kinds=hidden
    )
    keyset, sort_name = listing.keyset_for(
        {"id": operations.Operation.id, "created_at": operations.Operation.created_at},
        None,
        None,
        after,
        default="created_at",
        default_order="desc",
    )
    if listing.wants_csv(request):
        return csv_export(
            "operations.csv",
            OPERATION_CSV,
            operation_lists.org_batches(wanted, keyset),
            lambda rows: ([r[c] for c in OPERATION_CSV] for r in rows),
        )
    rows, cursor = listing.cut(await operation_lists.org_page(wanted, keyset, limit + 1), limit, keyset, sort_name)
    total = await operation_lists.org_count(wanted) if count else None
    return OperationPage(items=[operation_out(_listed(r)) for r in rows], next_cursor=cursor, total=total)


def _listed(op: OperationRecord) -> OperationRecord:
    """A listed operation: its stored result never holds a claim token, and must not start to."""
    result = op.result
    if isinstance(result, dict) and "claim_token" in result:
        op = msgspec.structs.replace(op, result={k: v for k, v in result.items() if k != "claim_token"})
    return op
