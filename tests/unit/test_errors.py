import pytest

from rules import errors
from web.errors import rule_status

EXPECTED = {
    "CurrencyMismatch": ("currency_mismatch", 422),
    "InvalidMoney": ("invalid_money", 422),
    "PermissionDenied": ("permission_denied", 403),
    "LastOwner": ("last_owner", 409),
    "InvalidTerm": ("invalid_term", 422),
    "NotRenewable": ("not_renewable", 409),
    "ExpiryMismatch": ("expiry_mismatch", 409),
    "InsufficientFunds": ("insufficient_funds", 409),
    "InvalidName": ("invalid_name", 422),
    "ClientNotAllowed": ("client_not_allowed", 422),
    "ClientNotActive": ("client_not_active", 409),
    "UnknownProductKind": ("unknown_product_kind", 422),
    "UnknownPermission": ("unknown_permission", 422),
    "UnknownPaymentMethod": ("unknown_payment_method", 422),
    "PaymentMethodNotAllowed": ("payment_method_not_allowed", 403),
    "NotAReseller": ("not_a_reseller", 409),
    "NameTaken": ("name_taken", 409),
    "TargetMissing": ("not_found", 404),
    "UnknownEventType": ("unknown_event_type", 422),
    "InvalidWebhookUrl": ("invalid_webhook_url", 422),
    "ClientNotReleased": ("client_not_released", 409),
    "AlreadyClaimed": ("already_claimed", 409),
    "InvalidUrl": ("invalid_url", 422),
    "UnknownCurrency": ("unknown_currency", 400),
    "CreditLimitExceeded": ("credit_limit_exceeded", 409),
    "SettlementExceedsOwed": ("settlement_exceeds_owed", 409),
    "InvalidMonth": ("invalid_month", 400),
}


@pytest.mark.parametrize(("name", "code_and_status"), sorted(EXPECTED.items()))
def test_each_violation_has_its_code_and_the_web_answers_it_with_its_status(name, code_and_status):
    violation = getattr(errors, name)("what to fix")

    assert isinstance(violation, errors.RuleViolation)
    assert (violation.code, rule_status(violation.code)) == code_and_status
    assert not hasattr(violation, "status")  # HTTP is not the rules' business
    assert violation.message == "what to fix"


def test_every_violation_class_is_covered_and_codes_are_unique():
    classes = [
        value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, errors.RuleViolation)
    ]
    subclasses = {cls.__name__ for cls in classes} - {"RuleViolation"}

    assert subclasses == set(EXPECTED)
    assert len({cls.code for cls in classes}) == len(classes)


def test_base_violation_defaults_to_422():
    violation = errors.RuleViolation("bad")

    assert (violation.code, rule_status(violation.code), str(violation)) == ("rule_violation", 422, "bad")
