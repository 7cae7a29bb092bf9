"""A monthly statement as a printable page in a real browser: a real `tenure web` and
`tenure worker` on PostgreSQL and a private Redis, headless Chromium (Debian's) driven by
Playwright, the API key sent as the browser's Authorization header."""

from __future__ import annotations

import httpx
import pytest

from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.integration.flows import buy, wait_done

TOKEN = "statement-ops-secret"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = "/tmp/statement-page.png"


def bought(api, owner, org, name, **kwargs) -> dict:
    op = wait_done(api, owner, buy(api, owner, org, name, **kwargs).json()["id"], timeout=60)
    assert op["status"] == "succeeded", op
    return op


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_statement_prints_its_totals_per_kind_and_per_client(database_url, redis_server, processes):
    from playwright.sync_api import expect, sync_playwright

    redis = redis_server()
    env = tenure_env(database_url, redis.url, TENURE_OPS_TOKEN=TOKEN)
    port = free_port()
    web = processes.tenure("web", "web", "--port", str(port), env=env)
    processes.tenure("worker", "worker", "--processes", "1", "--threads", "2", env=env)
    wait_for_port(port, 60, proc=web)
    base = f"http://127.0.0.1:{port}"

    with httpx.Client(base_url=base, timeout=10) as api:
        owner = builders.person(api)
        reseller = builders.organization(api, owner, reseller=True)
        builders.fund(api, owner, reseller, 20_000)
        builders.credit_limit(api, reseller, 5000, ops_token=TOKEN)
        made = api.post(
            f"/v1/resellers/{reseller}/clients",
            headers=owner.auth,
            json={"name": "Bistro <Lyon>", "email": "bistro@client.test"},
        )
        assert made.status_code == 201, made.text
        client_id = made.json()["id"]
        bought(api, owner, reseller, "bistro.fr", client_id=client_id)
        op = bought(api, owner, reseller, "mail", kind="mailbox", client_id=client_id, payment_method="invoice")
        month = op["created_at"][:7]  # YYYY-MM of today (UTC)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(extra_http_headers=owner.auth)
            page = context.new_page()
            answer = page.goto(f"{base}/v1/organizations/{reseller}/billing/statements/{month}")
            assert answer is not None and answer.status == 200
            assert answer.headers["content-type"].startswith("text/html")

            expect(page.get_by_test_id("statement-month")).to_have_text(f"Statement for {month}")
            expect(page.get_by_test_id("total-topup")).to_have_text("200.00 EUR")
            expect(page.get_by_test_id("total-purchase")).to_have_text("39.00 EUR")
            expect(page.get_by_test_id(f"client-total-{client_id}")).to_have_text("39.00 EUR")
            expect(page.get_by_text("Bistro <Lyon>")).to_be_visible()  # escaped, shown as text
            expect(page.get_by_test_id("closing-balance")).to_have_text("185.00 EUR")
            expect(page.get_by_test_id("closing-owed")).to_have_text("24.00 EUR")
            page.screenshot(path=SCREENSHOT, full_page=True)
            page.emulate_media(media="print")
            assert page.pdf(format="A4").startswith(b"%PDF")

            bad = page.goto(f"{base}/v1/organizations/{reseller}/billing/statements/2027-13")
            assert bad is not None and bad.status == 400
            assert "invalid_month" in page.content()
        finally:
            browser.close()
