"""Rule violations: each carries a machine-readable code and a message saying what to fix.

Which HTTP status answers each code is the web's business (web/errors.py, RULE_STATUSES)."""


class RuleViolation(Exception):
    """A request breaks a business rule; the message says what to fix."""

    code: str = "rule_violation"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CurrencyMismatch(RuleViolation):
    """Two amounts in different currencies were combined or compared."""

    code = "currency_mismatch"


class InvalidMoney(RuleViolation):
    """An amount is not integer minor units or the currency is not ISO 4217-shaped."""

    code = "invalid_money"


class PermissionDenied(RuleViolation):
    """A member lacks the permission an action needs."""

    code = "permission_denied"


class LastOwner(RuleViolation):
    """The change would leave an organization without an owner."""

    code = "last_owner"


class InvalidTerm(RuleViolation):
    """The number of years is out of range, or the expiry would be too far ahead."""

    code = "invalid_term"


class NotRenewable(RuleViolation):
    """The product is past redemption and can no longer be renewed."""

    code = "not_renewable"


class ExpiryMismatch(RuleViolation):
    """The renewal's guard expiry is not the product's current expiry."""

    code = "expiry_mismatch"


class InsufficientFunds(RuleViolation):
    """The prepaid balance does not cover the charge."""

    code = "insufficient_funds"


class InvalidName(RuleViolation):
    """A product name (for instance a domain name) is not acceptable."""

    code = "invalid_name"


class ClientNotAllowed(RuleViolation):
    """A client was named by an organization that is not a reseller."""

    code = "client_not_allowed"


class ClientNotActive(RuleViolation):
    """The reseller client is not active (released or otherwise gone)."""

    code = "client_not_active"


class UnknownProductKind(RuleViolation):
    """The product kind is not in the catalog."""

    code = "unknown_product_kind"


class UnknownPermission(RuleViolation):
    """A permission name is not one of the fixed names."""

    code = "unknown_permission"


class UnknownPaymentMethod(RuleViolation):
    """The payment method is not one tenure knows."""

    code = "unknown_payment_method"


class PaymentMethodNotAllowed(RuleViolation):
    """The member may not pay with this method."""

    code = "payment_method_not_allowed"


class NotAReseller(RuleViolation):
    """A reseller-only action was asked of an ordinary organization."""

    code = "not_a_reseller"


class NameTaken(RuleViolation):
    """Another product that is not deleted holds this domain name."""

    code = "name_taken"


class TargetMissing(RuleViolation):
    """The product or client an operation names is not (or no longer) in the organization."""

    code = "not_found"


class UnknownEventType(RuleViolation):
    """An endpoint subscribed to an event type tenure does not emit."""

    code = "unknown_event_type"


class InvalidWebhookUrl(RuleViolation):
    """A webhook endpoint URL is not an acceptable http(s) address."""

    code = "invalid_webhook_url"


class ClientNotReleased(RuleViolation):
    """A claim was asked for a client that has not been released."""

    code = "client_not_released"


class AlreadyClaimed(RuleViolation):
    """The released organization already has its owner; no new claim can be issued."""

    code = "already_claimed"


class InvalidUrl(RuleViolation):
    """A URL is malformed: it does not parse, or its port or host cannot be."""

    code = "invalid_url"


class UnknownCurrency(RuleViolation):
    """The currency is not one tenure sells in (the message lists those it does)."""

    code = "unknown_currency"


class CreditLimitExceeded(RuleViolation):
    """An invoice charge would take what is owed above the organization's credit limit."""

    code = "credit_limit_exceeded"


class SettlementExceedsOwed(RuleViolation):
    """A settlement is larger than what the organization owes."""

    code = "settlement_exceeds_owed"


class InvalidMonth(RuleViolation):
    """A statement month is not YYYY-MM."""

    code = "invalid_month"
