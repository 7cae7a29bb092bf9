"""GET /v1/organizations/{org}/products: filters, sorts, keyset pages, totals and CSV exports."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.api import builders as b
from tests.api.builders import refused
from tests.api.portfolio import T0, csv_rows, every_page, listed, names, product

DAY = timedelta(days=1)


@pytest.fixture
def owner(client):
    return b.person(client, "Rita")


@pytest.fixture
def reseller(client, owner):
    return b.organization(client, owner, reseller=True, name="Resell Co")


def test_the_expiry_window_holds_products_expiring_from_after_until_before(client, owner, reseller):
    product(reseller, "early.test", expires_at=T0)
    product(reseller, "inside.test", expires_at=T0 + 10 * DAY)
    product(reseller, "edge.test", expires_at=T0 + 30 * DAY)
    product(reseller, "late.test", expires_at=T0 + 31 * DAY)

    window = f"?expires_after={quote((T0 + DAY).isoformat())}&expires_before={quote((T0 + 31 * DAY).isoformat())}"
    after_only = "?expires_after=2027-01-31T00:00:00Z"
    before_only = "?expires_before=2027-01-01T00:00:00.000001%2B00:00"

    assert sorted(names(client, owner, reseller, window)) == ["edge.test", "inside.test"]
    assert sorted(names(client, owner, reseller, after_only)) == ["edge.test", "late.test"]
    assert names(client, owner, reseller, before_only) == ["early.test"]


def test_state_kind_autorenew_and_client_filters_combine(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery")
    product(reseller, "plain.test")
    product(reseller, "lapsed.test", state="grace")
    product(reseller, "box", kind="mailbox", autorenew=False)
    product(reseller, "bakery.test", client_id=bakery, autorenew=False)

    assert names(client, owner, reseller, "?state=grace") == ["lapsed.test"]
    assert names(client, owner, reseller, "?kind=mailbox") == ["box"]
    assert sorted(names(client, owner, reseller, "?autorenew=false")) == ["bakery.test", "box"]
    assert names(client, owner, reseller, f"?client={bakery}&autorenew=false") == ["bakery.test"]
    assert names(client, owner, reseller, "?kind=domain&autorenew=false&state=active") == ["bakery.test"]
    assert names(client, owner, reseller, "?state=deleted") == []


def test_q_finds_a_part_of_the_name_whatever_its_case(client, owner, reseller):
    product(reseller, "example.com")
    product(reseller, "my-example.org")
    product(reseller, "other.net")
    product(reseller, "Sales Inbox", kind="mailbox")

    assert sorted(names(client, owner, reseller, "?q=EXAMPLE")) == ["example.com", "my-example.org"]
    assert names(client, owner, reseller, "?q=exa") != []
    assert names(client, owner, reseller, "?q=.net") == ["other.net"]
    assert names(client, owner, reseller, "?q=sales%20INBOX") == ["Sales Inbox"]


def test_a_unicode_query_finds_the_stored_punycode_name(client, owner, reseller):
    product(reseller, "café.fr")  # stored as xn--caf-dma.fr
    product(reseller, "bücher.de")
    product(reseller, "cafe.fr")

    assert names(client, owner, reseller, "?q=" + quote("café")) == ["xn--caf-dma.fr"]
    assert names(client, owner, reseller, "?q=" + quote("CAFÉ.FR")) == ["xn--caf-dma.fr"]
    assert names(client, owner, reseller, "?q=" + quote("bücher")) == ["xn--bcher-kva.de"]
    assert names(client, owner, reseller, "?q=xn--caf") == ["xn--caf-dma.fr"]


def test_like_wildcards_in_q_are_plain_characters(client, owner, reseller):
    product(reseller, "abc.test")
    product(reseller, "100% uptime", kind="hosting")
    product(reseller, "my_box", kind="mailbox")

    assert names(client, owner, reseller, "?q=%25") == ["100% uptime"]
    assert names(client, owner, reseller, "?q=_") == ["my_box"]
    assert names(client, owner, reseller, "?q=a_c") == []


@pytest.mark.parametrize("sort", ["expires_at", "name", "created_at"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_follow_each_sort_and_see_every_product_once_despite_ties(client, owner, reseller, sort, order):
    made = {}
    for i in range(9):  # three products on each expiry day and creation instant: ties cross pages
        name = f"p{(i * 7) % 9}.test"
        made[product(reseller, name, expires_at=T0 + (i // 3) * DAY, created_at=T0 - (i % 3) * DAY)] = name

    seen, pages = every_page(
        client, owner, f"/v1/organizations/{reseller}/products", f"sort={sort}&order={order}", limit=2
    )

    assert pages == 5
    assert sorted(p["id"] for p in seen) == sorted(made)
    keys = [(p[sort], p["id"]) for p in seen]
    assert keys == sorted(keys, reverse=order == "desc")


def test_the_default_order_is_by_id_as_before(client, owner, reseller):
    made = [product(reseller, f"d{i}.test", expires_at=T0 - i * DAY) for i in range(5)]

    seen, _ = every_page(client, owner, f"/v1/organizations/{reseller}/products", "", limit=2)

    assert [p["id"] for p in seen] == sorted(made)


def test_the_total_is_reported_when_asked(client, owner, reseller):
    for i in range(5):
        product(reseller, f"t{i}.test", state="grace" if i % 2 else "active")

    counted = listed(client, owner, reseller, "?state=active&count=true&limit=1")
    plain = listed(client, owner, reseller, "?state=active&limit=1")

    assert counted["total"] == 3 and len(counted["items"]) == 1 and counted["next_cursor"]
    assert "total" not in plain


def test_a_cursor_is_opaque_and_bound_to_its_sort(client, owner, reseller):
    for i in range(3):
        product(reseller, f"c{i}.test")
    cursor = listed(client, owner, reseller, "?sort=name&limit=1")["next_cursor"]

    assert not cursor.startswith("prd_")
    message = refused(
        client.get(f"/v1/organizations/{reseller}/products?sort=expires_at&limit=1&after={cursor}", headers=owner.auth),
        400,
        "invalid_cursor",
    )
    assert "sort=name" in message
    refused(
        client.get(f"/v1/organizations/{reseller}/products?sort=name&order=desc&after={cursor}", headers=owner.auth),
        400,
        "invalid_cursor",
    )
    assert names(client, owner, reseller, f"?sort=name&limit=1&after={cursor}") == ["c1.test"]


@pytest.mark.parametrize(
    "query, code, named",
    [
        ("?expires_before=tomorrow", "invalid_request", "expires_before"),
        ("?expires_after=2027-01-01T00:00:00", "invalid_request", "expires_after"),
        ("?expires_before=0001-01-01T00:00:00%2B14:00", "invalid_request", "expires_before"),
        ("?expires_after=9999-12-31T23:59:59-14:00", "invalid_request", "expires_after"),
        ("?state=asleep", "invalid_request", "state"),
        ("?kind=boat", "invalid_request", "kind"),
        ("?autorenew=maybe", "invalid_request", "autorenew"),
        ("?sort=price", "invalid_request", "sort"),
        ("?order=up", "invalid_request", "order"),
        ("?count=lots", "invalid_request", "count"),
        ("?q=", "invalid_request", "q"),
        ("?q=" + "x" * 254, "invalid_request", "q"),
        ("?q=a%00b", "invalid_request", "q"),
        ("?client=%00", "invalid_request", "client"),
        ("?after=not-a-cursor", "invalid_cursor", "after"),
        ("?after=eyJzIjoiaWQiLCJkIjpmYWxzZSwiayI6Ilx1MDAwMCIsImkiOiJcdTAwMDAifQ", "invalid_cursor", "after"),
        ("?after=eyJzIjoiaWQifQ", "invalid_cursor", "after"),
        ("?expires_befor=2027-01-01T00:00:00Z", "unknown_parameter", "expires_befor"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_bad_product_queries_are_refused(client, owner, reseller, query, code, named):
    product(reseller, "kept.test")

    answer = client.get(f"/v1/organizations/{reseller}/products{query}", headers=owner.auth)

    assert named in refused(answer, 400, code)


def test_an_unknown_parameter_is_named_instead_of_ignored(client, owner, reseller):
    product(reseller, "a.test", state="grace")
    product(reseller, "b.test")

    answer = client.get(f"/v1/organizations/{reseller}/products?status=grace&colour=blue", headers=owner.auth)

    message = refused(answer, 400, "unknown_parameter")
    assert "colour" in message and "status" in message
    assert "state" in message  # the parameters the route does take are listed


def test_a_csv_export_holds_the_whole_filtered_result_without_page_limit(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery")
    for i in range(7):
        product(reseller, f"e{i}.test", expires_at=T0 + i * DAY, client_id=bakery if i == 3 else None)
    product(reseller, "gone.test", state="deleted")

    answer = client.get(
        f"/v1/organizations/{reseller}/products?state=active&sort=expires_at&order=desc&limit=2",
        headers={**owner.auth, "Accept": "text/csv"},
    )

    rows = csv_rows(answer)
    assert [r["name"] for r in rows] == [f"e{i}.test" for i in reversed(range(7))]
    assert list(rows[0]) == [
        "id",
        "kind",
        "name",
        "organization_id",
        "client_id",
        "reseller_id",
        "expires_at",
        "autorenew",
        "state",
        "created_at",
    ]
    by_name = {r["name"]: r for r in rows}
    assert by_name["e3.test"]["client_id"] == bakery and by_name["e0.test"]["client_id"] == ""
    assert by_name["e0.test"]["expires_at"] == T0.isoformat() and by_name["e0.test"]["autorenew"] == "true"
    assert "attachment" in answer.headers["content-disposition"]


def test_json_stays_the_answer_unless_csv_is_preferred(client, owner, reseller):
    product(reseller, "j.test")

    for accept in ("*/*", "application/json", "application/json, text/csv;q=0.5"):
        answer = client.get(f"/v1/organizations/{reseller}/products", headers={**owner.auth, "Accept": accept})
        assert answer.status_code == 200 and answer.json()["items"][0]["name"] == "j.test", accept


def test_product_names_that_look_like_formulas_stay_text_in_csv(client, owner, reseller):
    product(reseller, '=HYPERLINK("http://evil.test")', kind="hosting")
    product(reseller, "@SUM(1)", kind="mailbox")

    rows = csv_rows(client.get(f"/v1/organizations/{reseller}/products", headers={**owner.auth, "Accept": "text/csv"}))

    assert sorted(r["name"] for r in rows) == ['\'=HYPERLINK("http://evil.test")', "'@SUM(1)"]


def test_another_organizations_products_are_not_listed_or_exported(client, owner, reseller):
    outsider = b.person(client, "Otto")
    theirs = b.organization(client, outsider)
    product(theirs, "theirs.test")
    product(reseller, "mine.test")

    assert names(client, owner, reseller, "?q=test") == ["mine.test"]
    refused(client.get(f"/v1/organizations/{theirs}/products", headers=owner.auth), 404, "not_found")
    refused(
        client.get(f"/v1/organizations/{theirs}/products", headers={**owner.auth, "Accept": "text/csv"}),
        404,
        "not_found",
    )
