"""The HTTP client webhooks leave by: every connection goes to an address it resolved and checked.

httpx would resolve a URL's host itself when it connects, after (and apart from) any
check: a name can answer a public address to the check and 127.0.0.1 to the connection.
Here the resolution, the check and the connection are one step, in the network backend of
httpx's own transport: the URL keeps its host, so the Host header, the TLS server name and
certificate verification are httpx's usual ones, and pooled connections stay keyed by that
host (a connection verified for one host never carries another host's request).

One client serves a whole worker process (`WebhookClient`): its CA bundle is loaded once
and its connections are kept alive between deliveries.
"""

from __future__ import annotations

import ssl
import typing

import anyio
import dramatiq
import httpcore
import httpx

from worker.webhooks.addresses import Resolver, Unresolvable, checked_addresses, resolve

TIMEOUT_S = 15
# A worker process sends up to threads x CONCURRENCY POSTs at once (8 x 25, see
# worker.webhooks.delivery): room for all of them, and as many kept alive as one batch's
# receivers will use again at once, so a batch does not reconnect for every POST.
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=5.0)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to a host's checked addresses only (raises `NotPublic` when one is not public)."""

    def __init__(self, resolver: Resolver, allow_private: bool) -> None:
        self.resolver = resolver
        self.allow_private = allow_private
        self.network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else anyio.current_time() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = await checked_addresses(host, self.resolver, self.allow_private)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} took over {timeout} s") from None
        except Unresolvable as exc:
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception = httpcore.ConnectError(f"no address to connect to for {host!r}")
        for left, address in zip(range(len(addresses), 0, -1), addresses, strict=True):
            # What remains of the timeout, shared by the addresses left: one that drops packets
            # leaves time for the next.
            share = None if deadline is None else max(0.0, deadline - anyio.current_time()) / left
            try:
                return await self.network.connect_tcp(
                    address, port, timeout=share, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, its connection pool built on `PinnedBackend`; TLS verified as usual."""

    def __init__(
        self,
        resolver: Resolver,
        allow_private: bool,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = LIMITS,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=ssl_context, limits=limits)
        # httpx takes no network backend: its pool (never opened) is replaced by one that does.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(resolver, allow_private),
        )


def pinned_client(
    resolver: Resolver = resolve, allow_private: bool = False, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """A client for webhook POSTs: checked addresses, no redirects, no proxy or .netrc from the environment."""
    return httpx.AsyncClient(
        transport=PinnedTransport(resolver, allow_private, verify),
        timeout=TIMEOUT_S,
        follow_redirects=False,
        trust_env=False,
    )


class WebhookClient(dramatiq.Middleware):
    """This worker process's one webhook client: opened on the actors' event loop when the worker
    boots, closed there when it shuts down (Dramatiq runs after-hooks in reverse, so before the
    AsyncIO middleware stops that loop)."""

    def __init__(self, allow_private: bool, resolver: Resolver = resolve) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self._client: httpx.AsyncClient | None = None

    def before_worker_boot(self, broker, worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        async def open_client() -> httpx.AsyncClient:
            return pinned_client(self.resolver, self.allow_private)

        self._client = get_event_loop_thread().run_coroutine(open_client())

    def after_worker_shutdown(self, broker, worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        client, self._client = self._client, None
        loop_thread = get_event_loop_thread()
        if client is not None and loop_thread is not None:
            loop_thread.run_coroutine(client.aclose())

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the webhook client opens when a worker boots (WebhookClient middleware)")
        return self._client
