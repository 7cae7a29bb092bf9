"""Requests too malformed to reach the app still get the JSON error body.

uvicorn answers a request it cannot parse (a control character or a space in the request
line, a bad header or Content-Length, broken chunked framing) with a 400 in text/plain
before any application code runs. `tenure web` and `tenure demo` serve HTTP with this
protocol instead: the same 400, with `{"error": {"code": "invalid_request", "message"}}`.
"""

from __future__ import annotations

import msgspec
from uvicorn.protocols.http.auto import AutoHTTPProtocol

MESSAGE = (
    "the request is not valid HTTP/1.1: percent-encode the URL (no spaces or control "
    "characters) and send well-formed headers and body framing"
)
_BODY = msgspec.json.encode({"error": {"code": "invalid_request", "message": MESSAGE}, "status": 400})


class JsonErrorsProtocol(AutoHTTPProtocol):  # httptools when installed, else h11 (uvicorn's choice)
    def send_400_response(self, msg: str) -> None:
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head.extend(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: " + str(len(_BODY)).encode("ascii") + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + _BODY)
        self.transport.close()
