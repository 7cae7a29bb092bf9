"""An operation's params as the web records them and the worker reads them back, across versions."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from tables import operation_params as p
from tables.operations import new_row, record

EXPIRES = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)

ONE_OF_EACH = [
    p.PurchaseParams(kind="domain", name="exemple.fr", years=2, payment_method="prepaid", client_id="cli_1"),
    p.RenewalParams(years=1, current_expires_at=EXPIRES, payment_method="invoice", key_permissions=["product:renew"]),
    p.RenewalParams(
        years=1, current_expires_at=EXPIRES, payment_method="prepaid", autorenew_days_before=15, payer="org_r"
    ),
    p.RenewalBatchParams(
        items=[p.RenewalItem(product_id="prd_1", years=3, current_expires_at=EXPIRES, payment_method="prepaid")]
    ),
    p.TransferParams(to_client=None),
    p.ReleaseParams(client_id="cli_1", owner_email="client@example.fr", claim_days=14),
    p.ClientUpsertParams(external_ref="crm-7", name="Boulangerie Costa", email="costa@example.fr"),
    p.TestClockParams(advance_to=EXPIRES),
    p.TopUpParams(amount=p.AmountIO(150_000, "EUR")),
    p.SettlementParams(amount=p.AmountIO(2_500, "GBP"), reference="virement 42"),
]
KIND_OF = {struct: kind for kind, struct in p.BY_KIND.items()}


def stored_op(kind: str, params: dict):
    """An operation as read back from the database, its params as its JSON column holds them."""
    return record({**new_row(kind, "org_1", EXPIRES), "params": params})


@pytest.mark.parametrize("params", ONE_OF_EACH, ids=lambda params: type(params).__name__)
def test_params_read_back_as_recorded(params):
    row = new_row(KIND_OF[type(params)], "org_1", EXPIRES, params=params)

    stored = msgspec.json.decode(msgspec.json.encode(row["params"]))  # through the JSON column
    assert p.of(stored_op(row["kind"], stored)) == params
    assert None not in stored.values() and "v" not in stored  # defaults left out: version 1


def test_a_later_version_is_recorded_as_such():
    row = new_row("transfer", "org_1", EXPIRES, params=p.TransferParams(v=2, to_client="cli_9"))

    assert row["params"] == {"v": 2, "to_client": "cli_9"}


def test_rows_recorded_before_the_structs_still_run():
    """Rows accepted by the previous release (plain dicts, no version, ISO times with +00:00)."""
    renewal = stored_op(
        "renewal",
        {
            "years": 1,
            "current_expires_at": "2027-03-10T12:00:00+00:00",
            "payment_method": "prepaid",
            "autorenew_days_before": 31,
            "payer": "org_r",
        },
    )
    purchase = stored_op(
        "purchase", {"kind": "domain", "name": "a.fr", "years": 1, "payment_method": "prepaid", "client_id": None}
    )

    assert p.of(renewal) == p.RenewalParams(
        years=1, current_expires_at=EXPIRES, payment_method="prepaid", autorenew_days_before=31, payer="org_r"
    )
    assert p.read(purchase, p.PurchaseParams).name == "a.fr"
    assert p.of(purchase).v == 1


def test_a_newer_release_s_fields_are_ignored_by_an_older_reader():
    """A row written by a later version (v 2, a field this one does not know) still runs here."""
    row = stored_op("transfer", {"v": 2, "to_client": "cli_9", "keep_dns": True})

    assert p.of(row) == p.TransferParams(v=2, to_client="cli_9")


def test_params_that_do_not_fit_their_kind_are_refused():
    with pytest.raises(TypeError, match="purchase operation takes PurchaseParams"):
        new_row("purchase", "org_1", EXPIRES, params=p.TransferParams(to_client=None))
    with pytest.raises(msgspec.ValidationError, match="payment_method"):
        p.of(stored_op("purchase", {"kind": "domain", "name": "a.fr", "years": 1}))


def test_each_kind_s_params_are_tried_above():
    assert {KIND_OF[type(params)] for params in ONE_OF_EACH} == set(p.BY_KIND)
