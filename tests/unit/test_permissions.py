import pytest

from rules import permissions as perms
from rules.errors import (
    ClientNotActive,
    ClientNotAllowed,
    NotAReseller,
    PaymentMethodNotAllowed,
    PermissionDenied,
    UnknownPaymentMethod,
    UnknownPermission,
)

DESIGN_NAMES = {
    "org:view", "org:manage", "billing:view", "billing:manage", "pay:prepaid",
    "pay:invoice", "product:view", "product:buy", "product:renew", "product:manage",
    "product:transfer", "client:manage", "webhook:manage",
}  # fmt: skip


def test_all_permissions_are_exactly_the_design_names():
    assert perms.ALL_PERMISSIONS == DESIGN_NAMES
    assert isinstance(perms.ALL_PERMISSIONS, frozenset)


def test_constants_spell_the_design_names():
    assert perms.ORG_VIEW == "org:view"
    assert perms.PAY_INVOICE == "pay:invoice"
    assert perms.PRODUCT_TRANSFER == "product:transfer"
    assert perms.WEBHOOK_MANAGE == "webhook:manage"
    assert perms.OWNER_TEAM_NAME == "Owners"


def test_payment_methods_map_to_their_permissions():
    assert perms.PAYMENT_METHODS == {"prepaid": "pay:prepaid", "invoice": "pay:invoice"}


def test_valid_permissions_come_back_as_a_frozenset():
    result = perms.validate_permissions(["org:view", "product:buy", "org:view"])

    assert result == frozenset({"org:view", "product:buy"})


def test_no_permissions_is_a_valid_team():
    assert perms.validate_permissions([]) == frozenset()


def test_a_single_name_as_a_string_is_one_permission():
    assert perms.validate_permissions("org:view") == frozenset({"org:view"})


def test_unknown_permission_names_the_bad_ones_and_lists_valid_ones():
    with pytest.raises(UnknownPermission) as caught:
        perms.validate_permissions(["org:view", "org:destroy", "buy"])

    message = caught.value.message
    assert "'org:destroy'" in message and "'buy'" in message
    assert "product:renew" in message


def test_member_with_the_permission_may_act():
    perms.require(frozenset({perms.PRODUCT_BUY}), perms.PRODUCT_BUY)


def test_member_without_the_permission_is_denied_naming_it():
    with pytest.raises(PermissionDenied, match="needs product:renew"):
        perms.require(frozenset({perms.PRODUCT_BUY}), perms.PRODUCT_RENEW)


def test_requiring_a_misspelled_permission_is_a_programming_error():
    with pytest.raises(ValueError):
        perms.require(perms.ALL_PERMISSIONS, "product:by")


@pytest.mark.parametrize(("method", "permission"), [("prepaid", "pay:prepaid"), ("invoice", "pay:invoice")])
def test_payment_method_is_allowed_with_its_permission(method, permission):
    perms.require_payment_method(frozenset({permission}), method)


def test_invoice_permission_does_not_allow_prepaid():
    with pytest.raises(PaymentMethodNotAllowed, match="needs pay:prepaid"):
        perms.require_payment_method(frozenset({perms.PAY_INVOICE}), "prepaid")


def test_unknown_payment_method_lists_the_valid_ones():
    with pytest.raises(UnknownPaymentMethod, match="invoice, prepaid"):
        perms.require_payment_method(perms.ALL_PERMISSIONS, "card")


@pytest.mark.parametrize("reseller", [True, False])
def test_buying_for_oneself_needs_no_client(reseller):
    perms.check_purchase_owner(reseller, None, None)


def test_non_reseller_cannot_name_a_client():
    with pytest.raises(ClientNotAllowed, match="reseller"):
        perms.check_purchase_owner(False, "cl_1", "active")


def test_reseller_can_buy_for_an_active_client():
    perms.check_purchase_owner(True, "cl_1", "active")


@pytest.mark.parametrize("status", ["released", "suspended", None])
def test_reseller_cannot_buy_for_a_client_that_is_not_active(status):
    with pytest.raises(ClientNotActive, match="cl_1"):
        perms.check_purchase_owner(True, "cl_1", status)


@pytest.mark.parametrize("to_client_status", [None, "active"])
def test_non_reseller_cannot_transfer(to_client_status):
    with pytest.raises(NotAReseller):
        perms.check_transfer(False, to_client_status)


@pytest.mark.parametrize("to_client_status", [None, "active"])
def test_reseller_transfers_to_itself_or_an_active_client(to_client_status):
    perms.check_transfer(True, to_client_status)


def test_reseller_cannot_transfer_to_a_released_client():
    with pytest.raises(ClientNotActive):
        perms.check_transfer(True, "released")


@pytest.mark.parametrize(
    ("kind", "needed"),
    [
        ("purchase", "product:view"),
        ("renewal", "product:view"),
        ("transfer", "product:view"),
        ("release", "client:manage"),
        ("client_upsert", "client:manage"),
        ("topup", "org:view"),
    ],
)
def test_reading_an_operation_needs_what_its_kind_is_about(kind, needed):
    assert perms.needed_to_read(kind) == needed


@pytest.mark.parametrize(
    ("granted", "hidden"),
    [
        ({"org:view"}, {"purchase", "renewal", "renewal_batch", "transfer", "release", "client_upsert"}),
        ({"org:view", "product:view"}, {"release", "client_upsert"}),
        ({"org:view", "client:manage"}, {"purchase", "renewal", "renewal_batch", "transfer"}),
        ({"org:view", "product:view", "client:manage"}, set()),
    ],
)
def test_a_listed_kind_is_one_its_reader_could_read_alone(granted, hidden):
    assert perms.operation_kinds_hidden(frozenset(granted)) == hidden
    for kind in [
        "purchase",
        "renewal",
        "renewal_batch",
        "transfer",
        "release",
        "client_upsert",
        "topup",
        "future_kind",
    ]:
        assert (kind in hidden) == (perms.needed_to_read(kind) not in granted)
