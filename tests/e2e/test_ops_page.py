"""The /ops page in a real browser: a real `tenure web` and `tenure worker`, a private Redis,
headless Chromium (Debian's) driven by Playwright.

The test makes a failing operation (a purchase with no funds) and a dead letter (a message its
actor cannot run, sent with no retries), logs in through the form, sees both, watches a second
failure appear without reloading, then stops the worker and presses Requeue: the letter leaves
the dead letters and waits on its queue.
"""

from __future__ import annotations

import re

import httpx
import pytest

from runtime.clock import clock
from runtime.settings import Settings
from tables import webhooks
from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.integration.flows import buy, db, wait_done
from tests.integration.test_ops import poison, wait_for
from worker import sweeps
from worker.broker import make_broker
from worker.queue import Sender

TOKEN = "ops-page-secret"
OPS = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = "/tmp/ops-page.png"
SCREENSHOT_AFTER = "/tmp/ops-page-after-requeue.png"
SEEN_MS = 15_000  # the page refreshes every second here; this is how long a change may take to show


def failed_purchase(api: httpx.Client, owner, org: str, name: str) -> dict:
    """A purchase by an organization with no funds: the worker fails it with insufficient_funds."""
    answer = buy(api, owner, org, name)
    assert answer.status_code == 202, answer.text
    op = wait_done(api, owner, answer.json()["id"], timeout=60)
    assert (op["status"], op["error"]["code"]) == ("failed", "insufficient_funds"), op
    return op


async def unhealthy_endpoints(org: str) -> tuple[str, str]:
    """One endpoint failing since now, one disabled (written as the delivery actor would)."""
    failing = await webhooks.create_endpoint(org, "https://failing.invalid/hook", frozenset(), "whsec_x", clock.now())
    disabled = await webhooks.create_endpoint(org, "https://gone.invalid/hook", frozenset(), "whsec_y", clock.now())
    await webhooks.endpoint_failed(failing.id, clock.now())
    await webhooks.endpoint_failed(disabled.id, clock.now())
    await webhooks.disable_endpoint(disabled.id, "failing_for_5_days", clock.now())
    return failing.id, disabled.id


def queue(api: httpx.Client, name: str) -> dict:
    return next(q for q in api.get("/v1/ops/queues", headers=OPS).json() if q["queue"] == name)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_ops_page_shows_failures_and_dead_letters_refreshes_itself_and_requeues(
    database_url, redis_server, processes
):
    from playwright.sync_api import expect, sync_playwright

    redis = redis_server()
    env = tenure_env(database_url, redis.url, TENURE_OPS_TOKEN=TOKEN)
    port = free_port()
    web = processes.tenure("web", "web", "--port", str(port), env=env)
    worker = processes.tenure("worker", "worker", "--processes", "1", "--threads", "2", env=env)
    wait_for_port(port, 60, proc=web)
    base = f"http://127.0.0.1:{port}"

    try:
        with httpx.Client(base_url=base, timeout=10) as api:
            owner = builders.person(api)
            org = builders.organization(api, owner)  # no funds
            first = failed_purchase(api, owner, org, "broke-first.fr")

            broker = make_broker(Settings(database_url=database_url, broker_url=redis.url))
            try:
                poison(broker)
                db(sweeps.sweep("states", Sender(broker)))  # one scheduler run on record (nothing due)
            finally:
                broker.close()
            # Endpoints of another organization: the failures above send them nothing.
            failing, disabled = db(unhealthy_endpoints(builders.organization(api, owner, name="Hooks")))
            letters = wait_for(lambda: api.get("/v1/ops/dead-letters", headers=OPS).json(), timeout=30)
            assert [(d["actor"], d["queue"]) for d in letters] == [("purchases.execute", "operations")]
            letter = letters[0]["message_id"]

            # Without the cookie: no dashboard and no requeue; and /ops is not in the API's schema.
            assert api.get("/ops").status_code == 401
            assert api.get("/ops/fragment").status_code == 401
            assert api.post(f"/ops/dead-letters/{letter}/requeue").status_code == 401
            assert queue(api, "operations")["dead_letters"] == 1
            assert not [p for p in api.get("/schema/openapi.json").json()["paths"] if p.startswith("/ops")]

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1440, "height": 1100})
                    page.goto(f"{base}/ops?refresh=1")

                    # Log in through the form: a wrong token first, then the right one.
                    page.get_by_test_id("login-token").fill("not-the-token")
                    page.get_by_test_id("login-submit").click()
                    expect(page.get_by_test_id("login-error")).to_be_visible()
                    page.get_by_test_id("login-token").fill(TOKEN)
                    page.get_by_test_id("login-submit").click()
                    page.wait_for_url(re.compile(r"/ops\?refresh=1$"))

                    # The failed operation with its code, and the dead letter with its counts.
                    expect(page.get_by_test_id(f"failed-op-{first['id']}-code")).to_have_text("insufficient_funds")
                    row = page.get_by_test_id(f"dead-letter-{letter}")
                    expect(row).to_be_visible()
                    expect(row).to_contain_text("purchases.execute")
                    expect(page.get_by_test_id("queue-operations-dead")).to_have_text("1")
                    expect(page.get_by_test_id("queue-operations-waiting")).to_have_text("0")
                    expect(page.get_by_test_id(f"webhook-{failing}")).to_contain_text("failing")
                    expect(page.get_by_test_id(f"webhook-{disabled}")).to_contain_text("failing_for_5_days")
                    expect(page.get_by_test_id("sweep-states")).to_contain_text("ok")

                    # Refreshed without reloading: a mark left in the page survives the new failure showing up.
                    page.evaluate("window.__notReloaded = true")
                    second = failed_purchase(api, owner, org, "broke-second.fr")
                    expect(page.get_by_test_id(f"failed-op-{second['id']}-code")).to_have_text(
                        "insufficient_funds", timeout=SEEN_MS
                    )
                    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
                    page.screenshot(path=SCREENSHOT, full_page=True)

                    # With no worker, a requeued letter stays visible as waiting.
                    worker.stop()
                    assert not worker.alive(), worker.tail()
                    assert queue(api, "operations")["waiting"] == 0
                    page.get_by_test_id(f"requeue-{letter}").click()

                    expect(page.get_by_test_id("notice")).to_contain_text(f"Requeued {letter}")  # after the redirect
                    expect(page.get_by_test_id("queue-operations-dead")).to_have_text("0")
                    expect(page.get_by_test_id("queue-operations-waiting")).to_have_text("1")
                    expect(page.get_by_test_id(f"dead-letter-{letter}")).to_have_count(0)
                    expect(page.get_by_test_id("no-dead-letters")).to_be_visible()
                    assert queue(api, "operations") | {"in_flight": None, "orphaned": None} == {
                        "queue": "operations",
                        "waiting": 1,
                        "delayed": 0,
                        "in_flight": None,
                        "orphaned": None,
                        "dead_letters": 0,
                    }

                    # The refresh keeps going after the requeue's redirect (and still shows both failures).
                    page.evaluate("window.__notReloaded = true")
                    updated = page.get_by_test_id("updated").inner_text()
                    expect(page.get_by_test_id("updated")).not_to_have_text(updated, timeout=SEEN_MS)
                    assert page.evaluate("window.__notReloaded === true")
                    expect(page.get_by_test_id(f"failed-op-{first['id']}")).to_be_visible()
                    expect(page.get_by_test_id(f"failed-op-{second['id']}")).to_be_visible()

                    page.screenshot(path=SCREENSHOT_AFTER, full_page=True)
                finally:
                    browser.close()
    except Exception as failure:
        raise AssertionError(f"{failure}\n{processes.tails()}") from failure
