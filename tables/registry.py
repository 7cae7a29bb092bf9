"""Every tenure table, in dependency order (referenced tables first)."""

from tables.accounts import Account
from tables.activity import Activity
from tables.api_keys import ApiKey
from tables.claims import Claim
from tables.clients import Client
from tables.events import Event
from tables.idempotency import IdempotentResponse
from tables.inbound import InboundMessage, InboundSecret
from tables.leases import JobLease
from tables.ledger import Balance, LedgerEntry
from tables.operations import Operation
from tables.organizations import Organization
from tables.products import Product, ProductSchedule
from tables.retention import RetentionCount
from tables.sweeps import SweepRun
from tables.teams import Membership, Team
from tables.test_clocks import TestClock
from tables.tier_states import TierState
from tables.webhooks import Delivery, DeliveryAttempt, WebhookEndpoint

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
