"""What an operation was asked to do: one msgspec Struct of params per kind of operation.

The web builds them at intake (web/intake.py and the routes) and records them with the
operation (the JSON `params` column, `to_row`); the worker reads them back in its actor
(`of(op)`), typed, instead of reaching into a dict by string keys.

A message accepted before a deploy runs after it, and during a rolling deploy old and new
processes read each other's rows: each Struct carries `v` (the params' version, 1 today, and
recorded only when it is not 1), a field added later must have a default, decoding ignores
fields it does not know, and fields left at their default are not recorded (a release that
reads `params.get(name, default)` finds its own default). A row stored before these Structs
existed reads as version 1: the fields are the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import msgspec

from rules.operations import OperationKind

if TYPE_CHECKING:  # tables.operations imports this module
    from tables.operations import OperationRecord


class Params(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    v: int = 1  # recorded from version 2 on: absent means 1
    # The permissions of the API key that asked, when that key narrows its account's: the
    # worker's permission recheck narrows the same way (worker/execution.py).
    key_permissions: list[str] | None = None


class PurchaseParams(Params, kw_only=True, frozen=True):
    kind: str
    name: str  # normalized (rules.names)
    years: int
    payment_method: str
    client_id: str | None = None


class RenewalParams(Params, kw_only=True, frozen=True):
    years: int
    current_expires_at: datetime  # the guard: the expiry the asker saw
    payment_method: str
    autorenew_days_before: int | None = None  # set when tenure's autorenew asked
    payer: str | None = None  # autorenew: the organization charged (a client's reseller)


class RenewalItem(msgspec.Struct, kw_only=True, frozen=True):
    product_id: str
    years: int
    current_expires_at: datetime
    payment_method: str


class RenewalBatchParams(Params, kw_only=True, frozen=True):
    items: list[RenewalItem]


class TransferParams(Params, kw_only=True, frozen=True):
    to_client: str | None = None  # None: to the organization itself


class ReleaseParams(Params, kw_only=True, frozen=True):
    client_id: str
    owner_email: str
    claim_days: int | None = None  # None: the claim rules' default


class ClientUpsertParams(Params, kw_only=True, frozen=True):
    external_ref: str
    name: str
    email: str


class TestClockParams(Params, kw_only=True, frozen=True):
    __test__ = False  # not a pytest test class
    advance_to: datetime


class AmountIO(msgspec.Struct, frozen=True):
    amount: int  # minor units
    currency: str


class TopUpParams(Params, kw_only=True, frozen=True):
    amount: AmountIO


class SettlementParams(Params, kw_only=True, frozen=True):
    amount: AmountIO
    reference: str | None = None


BY_KIND: dict[str, type[Params]] = {
    OperationKind.PURCHASE: PurchaseParams,
    OperationKind.RENEWAL: RenewalParams,
    OperationKind.RENEWAL_BATCH: RenewalBatchParams,
    OperationKind.TRANSFER: TransferParams,
    OperationKind.RELEASE: ReleaseParams,
    OperationKind.CLIENT_UPSERT: ClientUpsertParams,
    OperationKind.TEST_CLOCK: TestClockParams,
    OperationKind.TOPUP: TopUpParams,
    OperationKind.SETTLEMENT: SettlementParams,
}


P = TypeVar("P", bound=Params)


def to_row(params: Params) -> dict:
    """The params as the `params` column holds them (JSON builtins; times in ISO 8601)."""
    return msgspec.to_builtins(params)


def read(op: OperationRecord, kind: type[P]) -> P:
    """An operation's params as `kind` (msgspec.ValidationError if they do not fit it)."""
    return msgspec.convert(op.params or {}, kind)


def of(op: OperationRecord) -> Params:
    """An operation's params, as the Struct of its kind."""
    return read(op, BY_KIND[op.kind])
