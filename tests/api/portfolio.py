"""Products for list tests, written straight into the tables (buying them needs workers)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime

from rules.names import normalize
from tables import products
from tables.products import Product

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def product(
    org: str,
    name: str,
    *,
    kind: str = "domain",
    expires_at: datetime = T0,
    state: str = "active",
    autorenew: bool = True,
    client_id: str | None = None,
    created_at: datetime | None = None,
) -> str:
    async def make() -> str:
        product_id = await products.insert(
            kind=kind,
            name=normalize(kind, name),
            organization_id=org,
            client_id=client_id,
            reseller_id=org if client_id else None,
            expires_at=expires_at,
            now=created_at or T0,
            schedule={},
            autorenew=autorenew,
        )
        assert product_id, f"{name} is already held"
        if state != "active":
            await Product.update({Product.state: state, Product.name_key: None}).where(Product.id == product_id)
        return product_id

    return asyncio.run(make())


def listed(client, who, org: str, query: str = "") -> dict:
    answer = client.get(f"/v1/organizations/{org}/products{query}", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def names(client, who, org: str, query: str = "") -> list[str]:
    return [p["name"] for p in listed(client, who, org, query)["items"]]


def every_page(client, who, path: str, query: str, limit: int) -> tuple[list[dict], int]:
    """All items of a list, following next_cursor; and how many pages it took."""
    seen: list[dict] = []
    pages = 0
    after = ""
    while True:
        sep = "&" if query else ""
        answer = client.get(f"{path}?{query}{sep}limit={limit}{after}", headers=who.auth)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages += 1
        assert len(page["items"]) <= limit
        seen += page["items"]
        if page["next_cursor"] is None:
            return seen, pages
        after = f"&after={page['next_cursor']}"
        assert pages < 100, "pagination does not end"


def csv_rows(answer) -> list[dict]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv"), answer.headers
    return list(csv.DictReader(io.StringIO(answer.text)))
