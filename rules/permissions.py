"""Permission names and the checks that use them; callers pass plain values."""

from __future__ import annotations

from collections.abc import Iterable

from rules.errors import (
    ClientNotActive,
    ClientNotAllowed,
    NotAReseller,
    PaymentMethodNotAllowed,
    PermissionDenied,
    UnknownPaymentMethod,
    UnknownPermission,
)
from rules.operations import OperationKind

ORG_VIEW = "org:view"
ORG_MANAGE = "org:manage"
BILLING_VIEW = "billing:view"
BILLING_MANAGE = "billing:manage"
PAY_PREPAID = "pay:prepaid"
PAY_INVOICE = "pay:invoice"
PRODUCT_VIEW = "product:view"
PRODUCT_BUY = "product:buy"
PRODUCT_RENEW = "product:renew"
PRODUCT_MANAGE = "product:manage"
PRODUCT_TRANSFER = "product:transfer"
CLIENT_MANAGE = "client:manage"
WEBHOOK_MANAGE = "webhook:manage"

ALL_PERMISSIONS: frozenset[str] = frozenset(
    {
        ORG_VIEW,
        ORG_MANAGE,
        BILLING_VIEW,
        BILLING_MANAGE,
        PAY_PREPAID,
        PAY_INVOICE,
        PRODUCT_VIEW,
        PRODUCT_BUY,
        PRODUCT_RENEW,
        PRODUCT_MANAGE,
        PRODUCT_TRANSFER,
        CLIENT_MANAGE,
        WEBHOOK_MANAGE,
    }
)

OWNER_TEAM_NAME = "Owners"

PAYMENT_METHODS = {"prepaid": PAY_PREPAID, "invoice": PAY_INVOICE}

ACTIVE_CLIENT = "active"


def validate_permissions(names: Iterable[str]) -> frozenset[str]:
    """The names as a set, or UnknownPermission naming the bad ones."""
    # A bare string would otherwise be read as a list of one-letter names.
    given = frozenset((names,) if isinstance(names, str) else names)
    unknown = given - ALL_PERMISSIONS
    if unknown:
        raise UnknownPermission(
            f"unknown permission(s): {', '.join(sorted(map(repr, unknown)))}; "
            f"valid permissions are: {', '.join(sorted(ALL_PERMISSIONS))}"
        )
    return given


def require(granted: frozenset[str], needed: str) -> None:
    """PermissionDenied unless a member's `granted` set holds `needed`."""
    if needed not in ALL_PERMISSIONS:
        # A typo here would deny everyone silently; fail loudly in tests instead.
        raise ValueError(f"{needed!r} is not a permission name")
    if needed not in granted:
        raise PermissionDenied(f"this action needs {needed}")


def require_payment_method(granted: frozenset[str], method: str) -> None:
    """UnknownPaymentMethod or PaymentMethodNotAllowed unless `method` may be used."""
    needed = PAYMENT_METHODS.get(method)
    if needed is None:
        raise UnknownPaymentMethod(
            f"unknown payment method {method!r}; valid methods are: {', '.join(sorted(PAYMENT_METHODS))}"
        )
    if needed not in granted:
        raise PaymentMethodNotAllowed(f"paying by {method} needs {needed}")


def check_purchase_owner(org_is_reseller: bool, client_id: str | None, client_status: str | None) -> None:
    """A purchase for a client is for resellers only, and the client must be active."""
    if client_id is None:
        return
    if not org_is_reseller:
        raise ClientNotAllowed("only a reseller organization can buy for a client; omit client")
    if client_status != ACTIVE_CLIENT:
        raise ClientNotActive(
            f"client {client_id} is not active (status {client_status!r}); "
            f"buy for an active client or for the reseller itself"
        )


def check_transfer(org_is_reseller: bool, to_client_status: str | None) -> None:
    """Only a reseller moves products, and only to itself (None) or an active client."""
    if not org_is_reseller:
        raise NotAReseller("only a reseller organization can transfer products between itself and its clients")
    if to_client_status is not None and to_client_status != ACTIVE_CLIENT:
        raise ClientNotActive(
            f"the target client is not active (status {to_client_status!r}); "
            f"transfer to an active client or to the reseller itself"
        )


# Reading an operation needs what its kind is about; a release carries a claim token.
_READ_OPERATION: dict[str, str] = {
    OperationKind.PURCHASE: PRODUCT_VIEW,
    OperationKind.RENEWAL: PRODUCT_VIEW,
    OperationKind.TRANSFER: PRODUCT_VIEW,
    OperationKind.RENEWAL_BATCH: PRODUCT_VIEW,
    OperationKind.RELEASE: CLIENT_MANAGE,
    OperationKind.CLIENT_UPSERT: CLIENT_MANAGE,
}


def needed_to_read(operation_kind: str) -> str:
    """The permission that lets a member read an operation of this kind (org:view at least)."""
    return _READ_OPERATION.get(operation_kind, ORG_VIEW)


def operation_kinds_hidden(granted: frozenset[str]) -> frozenset[str]:
    """The operation kinds a member holding `granted` may not read (see `needed_to_read`)."""
    return frozenset(kind for kind, needed in _READ_OPERATION.items() if needed not in granted)
