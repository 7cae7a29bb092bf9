"""For any sequence of purchases (prepaid and on invoice), renewals, restore fees, settlements and
top-ups, the prepaid balance and what is owed move exactly by the lines listed in transactions.

A hypothesis state machine drives the real app and workers (on SQLite and PostgreSQL); a model
follows each answer (the price an operation charged, the amount a top-up or settlement moved)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runtime.clock import clock
from tests.api import builders
from tests.integration.flows import buy, ledger_sums, renew, wait_done

KINDS = st.sampled_from(["domain", "mailbox"])
METHODS = st.sampled_from(["prepaid", "invoice"])


def test_balance_and_owed_move_exactly_by_the_listed_transactions(api, workers):
    workers()
    names = iter(range(10**6))

    class Billing(RuleBasedStateMachine):
        @initialize(limit=st.integers(0, 6000))
        def open_account(self, limit):
            clock.reset()
            self.owner = builders.person(api)
            self.org = builders.organization(api, self.owner)
            builders.credit_limit(api, self.org, limit)
            self.balance, self.owed, self.products = 0, 0, []

        @rule(amount=st.integers(1, 8000))
        def top_up(self, amount):
            builders.fund(api, self.owner, self.org, amount)
            self.balance += amount

        @rule(kind=KINDS, method=METHODS)
        def purchase(self, kind, method):
            name = f"p{next(names)}" + (".fr" if kind == "domain" else "")
            op = wait_done(
                api, self.owner, buy(api, self.owner, self.org, name, kind=kind, payment_method=method).json()["id"]
            )
            self._charged(op, method)
            if op["status"] == "succeeded":
                self.products.append(op["result"]["product_id"])

        @precondition(lambda self: self.products)
        @rule(index=st.integers(0, 50), method=METHODS, lapse=st.booleans())
        def renewal(self, index, method, lapse):
            product = api.get(
                f"/v1/products/{self.products[index % len(self.products)]}", headers=self.owner.auth
            ).json()
            if lapse:  # 40 days after expiry: in redemption, the restore fee is charged too
                clock.pin(datetime.fromisoformat(product["expires_at"]) + timedelta(days=40))
            self._charged(
                wait_done(api, self.owner, renew(api, self.owner, product, payment_method=method).json()["id"]), method
            )

        @rule(amount=st.integers(1, 5000))
        def settlement(self, amount):
            answer = api.post(
                f"/v1/organizations/{self.org}/billing/settlements",
                json={"amount": {"amount": amount, "currency": "EUR"}},
                headers={**self.owner.auth, "Idempotency-Key": f"s{next(names)}"},
            )
            if amount <= self.owed:
                assert answer.status_code == 201, answer.text
                self.owed -= amount
            else:
                assert answer.json()["error"]["code"] == "settlement_exceeds_owed"

        def _charged(self, op, method):
            if op["status"] != "succeeded":
                assert op["error"]["code"] in (
                    "insufficient_funds",
                    "credit_limit_exceeded",
                    "not_renewable",
                    "invalid_term",
                ), op
                return
            price = op["result"]["price"]["amount"]
            if method == "prepaid":
                self.balance -= price
            else:
                self.owed += price

        @invariant()
        def listed_lines_add_up_to_balance_and_owed(self):
            if not hasattr(self, "org"):
                return
            summary = api.get(f"/v1/organizations/{self.org}/billing", headers=self.owner.auth).json()
            assert (summary["balance"]["amount"], summary["owed"]["amount"]) == (self.balance, self.owed)
            assert 0 <= self.owed <= summary["credit_limit"]["amount"]
            lines = api.get(
                f"/v1/organizations/{self.org}/billing/transactions", params={"limit": 500}, headers=self.owner.auth
            ).json()["items"]
            assert sum(line["amount"]["amount"] for line in lines if line["book"] == "prepaid") == self.balance
            assert -sum(line["amount"]["amount"] for line in lines if line["book"] == "invoice") == self.owed
            if lines:
                assert (lines[-1]["balance"]["amount"], lines[-1]["owed"]["amount"]) == (self.balance, self.owed)
            assert set(ledger_sums().values()) <= {0}

        def teardown(self):
            clock.reset()

    run_state_machine_as_test(
        Billing,
        settings=settings(
            max_examples=15,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
