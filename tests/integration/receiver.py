"""A real HTTP webhook receiver on 127.0.0.1 that verifies every delivery it gets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    path: str
    webhook_id: str
    type: str
    data: dict
    answered: int
    timestamp: str = ""  # the payload's: when it happened (a sandbox's: its test clock's time)
    sandbox: bool = False
    body: dict | None = None  # the whole JSON body: type, timestamp, data


class Server(ThreadingHTTPServer):
    # Deliveries arrive many at once (worker.webhooks.delivery.CONCURRENCY): a listen backlog
    # of 5 (http.server's default) would reset connections that any real server accepts.
    request_queue_size = 128


@dataclass
class Receiver:
    """Answers each POST with `behaviour(path, webhook_id, attempt_number) -> (status, headers)`."""

    secrets: dict[str, str] = field(default_factory=dict)  # path -> endpoint secret
    behaviour: Callable[[str, str, int], tuple[int, dict]] = lambda path, wid, n: (200, {})
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # signatures that did not verify

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                secret = receiver.secrets.get(self.path)
                try:
                    message = Webhook(secret).verify(body, dict(self.headers.items()))
                except (WebhookVerificationError, TypeError, ValueError) as exc:
                    receiver.rejected.append(f"{self.path}: {exc}")
                    self.send_response(400)
                    self.end_headers()
                    return
                webhook_id = self.headers["webhook-id"]
                with receiver.lock:
                    attempt = 1 + sum(
                        1 for r in receiver.received if r.webhook_id == webhook_id and r.path == self.path
                    )
                    status, headers = receiver.behaviour(self.path, webhook_id, attempt)
                    receiver.received.append(
                        Received(
                            self.path,
                            webhook_id,
                            message["type"],
                            message["data"],
                            status,
                            message["timestamp"],
                            message.get("sandbox", False),
                            message,
                        )
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(json.dumps({"seen": webhook_id}).encode())

            def log_message(self, *args) -> None:
                pass

        self.lock = threading.Lock()
        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self, path: str) -> list[Received]:
        """Deliveries this path accepted (2xx)."""
        return [r for r in self.received if r.path == path and 200 <= r.answered < 300]
