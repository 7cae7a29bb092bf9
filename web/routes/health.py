"""Liveness."""

from litestar import get


@get("/health", tags=["ops"], security=[{}], include_in_schema=True)
async def health() -> dict:
    return {"status": "ok"}
