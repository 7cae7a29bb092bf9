"""Every tenure table, in dependency order (referenced tables first)."""

from tables.accounts import Account
from tables.activity import Activity
from tables.api_keys import ApiKey
from tables.claims import Claim
from tables.clients import Client
from tables.events import Event
from tables.idempotency import IdempotentResponse
from tables.leases import JobLease
from tables.ledger import Balance, LedgerEntry, TierState
from tables.operations import Operation
from tables.organizations import Membership, Organization, Team
from tables.products import Product, ProductSchedule
from tables.retention import RetentionCount
from tables.sweeps import SweepRun
from tables.test_clocks import TestClock
from tables.webhooks import Delivery, DeliveryAttempt, InboundMessage, InboundSecret, WebhookEndpoint

TABLES = [
    Account,
    ApiKey,
    Organization,
    Team,
    Membership,
    Client,
    Claim,
    Product,
    ProductSchedule,
    Operation,
    LedgerEntry,
    Balance,
    TierState,
    Event,
    WebhookEndpoint,
    Delivery,
    DeliveryAttempt,
    InboundSecret,
    InboundMessage,
    SweepRun,
    JobLease,
    RetentionCount,
    IdempotentResponse,
    Activity,
    TestClock,
]
