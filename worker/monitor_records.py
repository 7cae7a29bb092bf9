"""What a queue monitor reports, whatever the broker: a queue's depths and a dead letter; and a
dead letter read from the broker's own form, or made a fresh message to requeue it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dramatiq import Message


@dataclass
class QueueDepth:
    queue: str
    waiting: int
    delayed: int
    in_flight: int | None  # held by live workers; None where the broker cannot tell (RabbitMQ)
    dead_letters: int
    orphaned: int | None = None  # held by workers that stopped answering (killed); None: cannot tell

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeadLetter:
    message_id: str
    queue: str
    actor: str
    args: list
    retries: int  # Dramatiq's count of failed runs
    error: str | None  # the exception: last line of the traceback
    dead_at: float | None  # UNIX seconds
    traceback: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def dead_letter(message_id: str, queue: str, data: dict, dead_at: float | None) -> DeadLetter:
    options = data.get("options", {})
    trace = options.get("traceback") or ""
    return DeadLetter(
        message_id=message_id,
        queue=queue,
        actor=data.get("actor_name", "?"),
        args=list(data.get("args", [])),
        retries=int(options.get("retries", 0)),
        error=trace.strip().splitlines()[-1] if trace.strip() else None,
        dead_at=dead_at,
        traceback=trace or None,
    )


def fresh_message(data: dict) -> Message:
    """The dead message as a new one: same actor and arguments, retries reset."""
    return Message(
        queue_name=data["queue_name"].removesuffix(".DQ"),
        actor_name=data["actor_name"],
        args=tuple(data["args"]),
        kwargs=data.get("kwargs", {}),
        options={},
    )
