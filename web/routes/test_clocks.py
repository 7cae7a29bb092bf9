"""A sandbox organization's test clock: read it, or ask for it to move forward (an operation)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta, Struct

from rules import permissions
from rules.lifecycle import add_years, rfc3339
from rules.operations import OperationKind
from runtime.clock import clock
from tables import operations, test_clocks
from tables.engine import transaction
from tables.operation_params import TestClockParams
from tables.organizations import OrganizationRecord
from web.accept import DRY_RUN_RESPONSES, DryRunHeader, accept, accepted, dry_run_wanted, intake_or_replay
from web.access import Account, access
from web.errors import Conflict, Invalid
from web.schemas.operations import DryRunOut, ErrorOut, OperationOut

# One advance at most this far: a year of a portfolio is the rehearsal it is for; more is
# several calls (each walks every due instant, so a century in one call would hold a worker).
MAX_ADVANCE_YEARS = 5


class TestClockIn(Struct, forbid_unknown_fields=True):
    __test__ = False

    advance_to: Annotated[datetime, Meta(tz=True, description="RFC 3339 time with its offset, after the clock's `now`")]


class TestClockOut(Struct):
    __test__ = False

    organization_id: str
    now: datetime
    advancing: bool
    advancing_to: datetime | None
    operation_id: str | None


def _clock_out(row: dict) -> TestClockOut:
    return TestClockOut(
        organization_id=row["organization_id"],
        now=row["now_at"],
        advancing=row["advancing_to"] is not None,
        advancing_to=row["advancing_to"],
        operation_id=row["operation_id"],
    )


async def _sandbox_clock(org: OrganizationRecord) -> dict:
    row = await test_clocks.get(org.id) if org.sandbox else None
    if row is None:
        raise Conflict(
            "not_a_sandbox",
            "only a sandbox organization has a test clock; create one "
            'with POST /v1/organizations {"sandbox": true, ...}',
        )
    return row


async def _free_if_abandoned(row: dict) -> dict:
    """An advance whose operation ended without finishing it (given up by ops) holds nothing."""
    if row["advancing_to"] is None or row["operation_id"] is None:
        return row
    op = await operations.get(row["operation_id"])
    if op is not None and op.status in operations.UNFINISHED:
        return row
    async with transaction():
        await test_clocks.abandon(row["organization_id"])
    return {**row, "advancing_to": None, "operation_id": None}


def _check(row: dict, target: datetime) -> None:
    """Why this clock cannot advance to `target` now, if it cannot."""
    if row["advancing_to"] is not None:
        raise Conflict(
            "test_clock_advancing",
            f"the clock is already advancing to "
            f"{rfc3339(row['advancing_to'])}; wait for operation {row['operation_id']} to finish",
        )
    if target <= row["now_at"]:
        raise Conflict(
            "advance_not_ahead",
            f"advance_to must be after the clock's time {rfc3339(row['now_at'])}; a test clock never goes back",
        )
    if target > add_years(row["now_at"], MAX_ADVANCE_YEARS):
        raise Invalid(
            "advance_too_far",
            f"advance at most {MAX_ADVANCE_YEARS} years in one call "
            f"(until {rfc3339(add_years(row['now_at'], MAX_ADVANCE_YEARS))}); send several",
        )


async def _start(org_id: str, data: TestClockIn) -> TestClockParams:
    """Takes the clock for this advance, or says why not (409, 422)."""
    _check(await _free_if_abandoned(await test_clocks.get(org_id)), data.advance_to)
    async with transaction():
        if not await test_clocks.start_advance(org_id, data.advance_to, clock.now()):
            raise Conflict(
                "test_clock_advancing",
                "another advance of this clock started just now; GET the clock and try again once it is done",
            )
    return TestClockParams(advance_to=data.advance_to)


class TestClockController(Controller):
    __test__ = False
    path = "/v1/organizations/{org_id:str}/test-clock"
    tags = ["sandboxes"]

    @get("/")
    async def show(self, account: Account, org_id: FromPath[str]) -> TestClockOut:
        """The sandbox's time (`now`) and whether an advance is under way."""
        found = await access(account, org_id, permissions.ORG_VIEW)
        return _clock_out(await _free_if_abandoned(await _sandbox_clock(found.org)))

    @post("/", status_code=202, responses=DRY_RUN_RESPONSES)
    async def advance(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        data: JSONBody[TestClockIn],
        dry_run_header: DryRunHeader = None,
    ) -> Response[OperationOut]:
        """Moves a sandbox's clock forward to `advance_to` (at most 5 years): everything due to its
        products in between happens in order, at its simulated time (reminders, autorenew, expiry,
        grace, redemption, deletion, tier ageing), events delivered oldest first. Needs `org:manage`.
        Answers 202 with a `test_clock` operation; 409 `not_a_sandbox`, `advance_not_ahead`,
        `test_clock_advancing`. With `Dry-Run: 1`: the same checks, `would_fail` if one fails (200)."""
        wanted_dry_run = dry_run_wanted(dry_run_header)
        found = await access(account, org_id, permissions.ORG_MANAGE)
        row = await _sandbox_clock(found.org)
        if wanted_dry_run:
            try:
                _check(row, data.advance_to)
            except (Conflict, Invalid) as refused:
                return Response(
                    DryRunOut(
                        dry_run=True, quote=None, would_fail=ErrorOut(code=refused.code, message=refused.message)
                    ),
                    status_code=200,
                )
            return Response(DryRunOut(dry_run=True, quote=None, would_fail=None), status_code=200)
        replay, params = await intake_or_replay(request, org_id, data, lambda: _start(org_id, data))
        if replay:
            return accepted(replay)
        try:
            op = await accept(
                request,
                kind=OperationKind.TEST_CLOCK,
                org_id=org_id,
                account_id=account.id,
                data=data,
                params=params,
            )
        except BaseException:
            async with transaction():
                await test_clocks.abandon(org_id)
            raise
        async with transaction():
            await test_clocks.attach(org_id, op.id)
        return accepted(op)
