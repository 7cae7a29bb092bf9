"""Raw baselines for the ingress benchmark: the same stack without tenure.

`raw_app:decode_only` decodes a msgspec Struct and answers 202; `raw_app:with_insert`
also inserts one row through an asyncpg pool (RAW_DATABASE_URL), like the insert baseline of
bench/baselines.md.
"""

from __future__ import annotations

import os

import asyncpg
import msgspec
from litestar import Litestar, post


class PurchaseIn(msgspec.Struct):
    kind: str
    name: str
    years: int
    payment_method: str


@post("/purchases", status_code=202)
async def decode(data: PurchaseIn) -> dict:
    return {"status": "pending", "name": data.name}


decode_only = Litestar([decode], logging_config=None)

_pool: dict[str, asyncpg.Pool] = {}


async def _open() -> None:
    _pool["pool"] = await asyncpg.create_pool(os.environ["RAW_DATABASE_URL"], min_size=4, max_size=20)


async def _close() -> None:
    await _pool["pool"].close()


@post("/purchases", status_code=202)
async def insert(data: PurchaseIn) -> dict:
    await _pool["pool"].execute(
        "INSERT INTO raw_ops (name, body) VALUES ($1, $2)", data.name, msgspec.json.encode(data).decode()
    )
    return {"status": "pending", "name": data.name}


with_insert = Litestar([insert], on_startup=[_open], on_shutdown=[_close], logging_config=None)
