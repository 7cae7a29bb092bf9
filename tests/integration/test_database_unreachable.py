"""Which failures count as "the database is down" (503 and a retry) rather than a bug (500).

The 503 answer during an outage depends on this: under load a reconnect can fail with an
`OSError` that is no `ConnectionError` (no route to the host, no local port left), and it
must still be told apart from an `OSError` of tenure's own making.
"""

import asyncio

import asyncpg
import pytest

from tables import engine


def _connect_error(host: str) -> BaseException:
    async def connect() -> None:
        await asyncpg.connect(host=host, port=5432, user="tenure", timeout=2)

    with pytest.raises(BaseException) as caught:
        asyncio.run(connect())
    return caught.value


def test_an_os_error_that_is_no_connection_error_raised_while_connecting_counts(tmp_path):
    exc = _connect_error(str(tmp_path / "no-such-socket-folder"))  # a Unix socket that is not there
    assert isinstance(exc, OSError) and not isinstance(exc, ConnectionError)
    assert engine.unreachable(exc)


def test_a_refused_connection_counts_as_unreachable():
    assert engine.unreachable(_connect_error("0.0.0.1"))


def test_an_os_error_of_our_own_is_a_bug_not_an_outage(tmp_path):
    with pytest.raises(OSError) as caught:
        (tmp_path / "missing").read_text()
    assert not engine.unreachable(caught.value)


def test_a_wrapped_outage_is_found_through_its_cause():
    try:
        try:
            raise asyncpg.CannotConnectNowError("the database system is shutting down")
        except asyncpg.CannotConnectNowError as inner:
            raise RuntimeError("the transaction could not begin") from inner
    except RuntimeError as exc:
        assert engine.unreachable(exc)
