"""A request too malformed to reach the app (uvicorn refuses it while parsing) still gets
the JSON error body from `tenure web`, not text/plain."""

from __future__ import annotations

import json
import socket

import pytest

from tests.e2e.conftest import free_port, tenure_env, wait_for_port

MALFORMED = {
    "NUL in the path": b"GET /v1/products/prd_1\x00 HTTP/1.1\r\nHost: t\r\n\r\n",
    "a space in the path": b"GET /v1/products/prd 1 HTTP/1.1\r\nHost: t\r\n\r\n",
    "a control character in a header": b"GET /v1/me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer a\x01b\r\n\r\n",
    "a bad Content-Length": b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n",
    "broken chunked framing": (b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    "not HTTP at all": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
}


def exchange(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Sends raw bytes; the status line, headers and body of the answer (the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any query
def test_a_request_uvicorn_cannot_parse_gets_a_json_400(database_url, processes):
    port = free_port()
    web = processes.tenure("web", "web", "--port", str(port), env=tenure_env(database_url))
    wait_for_port(port, proc=web)

    answers = {label: exchange(port, request) for label, request in MALFORMED.items()}

    for label, (status, headers, body) in answers.items():
        assert status.startswith("HTTP/1.1 400"), (label, status, body)
        assert headers["content-type"] == "application/json", (label, headers, body)
        error = json.loads(body)["error"]
        assert error["code"] == "invalid_request" and "not valid HTTP" in error["message"], (label, body)
