"""The kinds of operation: what an organization (or tenure's own sweeps) may ask to be done.

Each is recorded as an operation row (`operations.kind`) with its params, run by its actor and
shown through the API with this value; which permission reads one is in rules.permissions.
"""

from __future__ import annotations

from enum import StrEnum


class OperationKind(StrEnum):
    PURCHASE = "purchase"
    RENEWAL = "renewal"
    RENEWAL_BATCH = "renewal_batch"  # a list of renewals, run as one child renewal each
    TRANSFER = "transfer"
    RELEASE = "release"
    CLIENT_UPSERT = "client_upsert"
    TEST_CLOCK = "test_clock"  # a sandbox's test clock advanced
    TOPUP = "topup"  # booked at once by the web (no actor)
    SETTLEMENT = "settlement"  # booked at once by the web (no actor)
