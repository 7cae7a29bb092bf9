"""Webhooks reach the public internet only: the address checked is the address connected to.

Host names are answered by `Hosts`, a resolver the test edits (given to the app and to the
workers), so a name can turn private between endpoint creation and delivery as a DNS
rebinding attacker's would, and a made-up name can lead to a listener on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from litestar.testing import TestClient

from runtime.clock import clock
from runtime.settings import Settings
from tables import events
from tables.engine import transaction
from tests.api import builders
from tests.integration.flows import db
from tests.ratelimits import UNLIMITED
from web.app import create_app
from worker.actors import declare
from worker.queue import Sender
from worker.webhooks.addresses import NotPublic
from worker.webhooks.client import WebhookClient, pinned_client
from worker.webhooks.fanout import fan_out

HOST = "hooks.tenant.example"
PUBLIC = "93.184.216.34"


class Hosts:
    """A resolver answering from `table` (a name not in it does not resolve); counts the questions."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


class Listener:
    """An HTTP/1.1 server on 127.0.0.1 (TLS with `tls`) that counts every connection it accepts
    and records each request's Host header, path and, over TLS, the server name asked for."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self.server_names: list[str | None] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections alive

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                listener.requests.append((self.headers["host"], self.path))
                body = b'{"listener": "answered"}'
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                listener.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: listener.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hosts():
    return Hosts()


@pytest.fixture
def allow_private():
    return False


@pytest.fixture
def settings(database_url, redis_url, allow_private):
    return Settings(
        database_url=database_url,
        broker_url=redis_url,
        ops_token="ops-secret",
        relay_stall_seconds=2,
        allow_private_webhook_urls=allow_private,
        **UNLIMITED,
    )


@pytest.fixture
def sender(broker, settings, hosts):
    sender = Sender(broker)
    declare(broker, sender, settings, resolver=hosts)
    return sender


@pytest.fixture
def api(settings, sender, hosts):
    app = create_app(settings, sender=sender)
    app.state.resolver = hosts
    with TestClient(app) as client:
        yield client


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for HOST: (certificate file, key file)."""
    if shutil.which("openssl") is None:
        pytest.fail("these tests make their certificate with the openssl command; install it")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={HOST}",
            "-addext",
            f"subjectAltName=DNS:{HOST}",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_listener(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    listener = Listener(context)
    yield listener
    listener.stop()


def endpoint(api, who, org, url: str):
    return api.post(
        f"/v1/organizations/{org}/webhook-endpoints", headers=who.auth, json={"url": url, "event_types": []}
    )


def one_event(sender, org: str) -> None:
    async def record() -> int:
        async with transaction():
            await events.record("tier.changed", org, clock.now(), data={"from": "A", "to": "B"})
        return await fan_out(sender)

    assert db(record()) == 1


def deliveries(api, who, org, hook: str) -> list[dict]:
    answer = api.get(f"/v1/organizations/{org}/webhook-endpoints/{hook}/deliveries", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


@pytest.mark.parametrize(
    "answers",
    [[PUBLIC], [PUBLIC, "2002:7f00::1"], ["100.100.100.200"]],
    ids=["public", "public-and-6to4-loopback", "metadata-service"],
)
def test_a_host_is_checked_at_creation_on_every_address_it_resolves_to(api, hosts, answers):
    owner = builders.person(api)
    org = builders.organization(api, owner)
    hosts.table[HOST] = answers

    answer = endpoint(api, owner, org, f"https://{HOST}/in")

    if answers == [PUBLIC]:
        assert answer.status_code == 201, answer.text
    else:
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["code"] == "invalid_webhook_url"
        assert HOST in error["message"] and "public internet" in error["message"]
        assert not any(address in error["message"] for address in answers)  # internal addresses stay ours


@pytest.mark.parametrize(
    "at_delivery",
    [["127.0.0.1"], [PUBLIC, "127.0.0.1"], ["::ffff:127.0.0.1"]],
    ids=["loopback", "public-and-loopback", "ipv4-mapped-loopback"],
)
def test_a_host_that_turns_private_after_creation_is_refused_at_delivery_without_a_connection(
    api, workers, broker, sender, hosts, listener, at_delivery
):
    workers()
    owner = builders.person(api)
    org = builders.organization(api, owner)
    hosts.table[HOST] = [PUBLIC]
    created = endpoint(api, owner, org, f"http://{HOST}:{listener.port}/in")
    assert created.status_code == 201, created.text
    hosts.table[HOST] = at_delivery  # the attacker's DNS now answers the listener on 127.0.0.1

    one_event(sender, org)
    broker.join("webhooks", interval=10, timeout=30_000)

    assert (listener.connections, listener.requests) == (0, [])
    [delivery] = deliveries(api, owner, org, created.json()["id"])
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)  # retried on the schedule
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] is None
    assert not attempt["response_excerpt"]
    assert attempt["error"].startswith("refused:") and "public internet" in attempt["error"]
    assert "127.0.0.1" not in attempt["error"]


@pytest.mark.parametrize("allow_private", [True])
def test_a_worker_connects_to_the_resolved_address_sends_the_host_and_keeps_one_client(
    api, workers, broker, sender, hosts, listener
):
    worker = workers(1)  # one thread: the deliveries go one after the other
    owner = builders.person(api)
    org = builders.organization(api, owner)
    hosts.table[HOST] = ["127.0.0.1"]  # a name the system cannot resolve: only the resolver knows it
    hook = endpoint(api, owner, org, f"http://{HOST}:{listener.port}/in").json()["id"]
    hosts.asked.clear()
    [middleware] = [m for m in broker.middleware if isinstance(m, WebhookClient)]
    client = middleware.client

    one_event(sender, org)
    broker.join("webhooks", interval=10, timeout=30_000)
    one_event(sender, org)
    broker.join("webhooks", interval=10, timeout=30_000)

    assert listener.requests == [(f"{HOST}:{listener.port}", "/in")] * 2
    assert [d["status"] for d in deliveries(api, owner, org, hook)] == ["succeeded", "succeeded"]
    assert listener.connections == 1 and hosts.asked == [HOST]  # one kept-alive connection, resolved once
    assert middleware.client is client and not client.is_closed
    worker.stop()
    assert client.is_closed


async def test_the_pinned_client_connects_to_the_checked_address_with_the_original_host(listener):
    hosts = Hosts()
    hosts.table[HOST] = ["127.0.0.1"]

    async with pinned_client(hosts, allow_private=True) as client:
        answer = await client.post(f"http://{HOST}:{listener.port}/in", content=b"{}")

    assert answer.status_code == 200 and answer.json() == {"listener": "answered"}
    assert listener.requests == [(f"{HOST}:{listener.port}", "/in")]
    assert hosts.asked == [HOST]


async def test_the_pinned_client_refuses_before_connecting_when_private_addresses_are_not_allowed(listener):
    hosts = Hosts()
    hosts.table[HOST] = ["127.0.0.1"]

    async with pinned_client(hosts, allow_private=False) as client:
        with pytest.raises(NotPublic):
            await client.post(f"http://{HOST}:{listener.port}/in", content=b"{}")

    assert listener.connections == 0


async def test_https_asks_for_and_verifies_the_original_host_name(tls_listener, certificate):
    hosts = Hosts()
    hosts.table[HOST] = ["127.0.0.1"]
    hosts.table["other.tenant.example"] = ["127.0.0.1"]
    trusting = ssl.create_default_context(cafile=str(certificate[0]))

    async with pinned_client(hosts, allow_private=True, verify=trusting) as client:
        answer = await client.post(f"https://{HOST}:{tls_listener.port}/in", content=b"{}")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # not the certificate's name
            await client.post(f"https://other.tenant.example:{tls_listener.port}/in", content=b"{}")

    assert answer.status_code == 200
    assert tls_listener.requests == [(f"{HOST}:{tls_listener.port}", "/in")]
    assert tls_listener.server_names == [HOST, "other.tenant.example"]


async def test_the_default_client_verifies_certificates_against_the_public_authorities(tls_listener):
    hosts = Hosts()
    hosts.table[HOST] = ["127.0.0.1"]

    async with pinned_client(hosts, allow_private=True) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # self-signed: untrusted
            await client.post(f"https://{HOST}:{tls_listener.port}/in", content=b"{}")

    assert tls_listener.requests == [] and tls_listener.server_names == [HOST]


async def test_the_pinned_client_tries_the_next_checked_address_when_one_does_not_answer(listener):
    hosts = Hosts()
    hosts.table[HOST] = ["::1", "127.0.0.1"]  # nothing listens on [::1] at that port

    async with pinned_client(hosts, allow_private=True) as client:
        answer = await client.post(f"http://{HOST}:{listener.port}/in", content=b"{}")

    assert answer.status_code == 200 and listener.requests == [(f"{HOST}:{listener.port}", "/in")]
