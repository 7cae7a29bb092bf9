"""Where a webhook may connect: resolve its host once and check every address (rules.webhooks.is_public).

Endpoint creation (web) and each delivery attempt (the pinned HTTP client) both go through
`checked_addresses`; a delivery then connects to one of the very addresses checked, never
to a second resolution of the name.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from rules.webhooks import is_public

# host -> its addresses, as text ("93.184.216.34", "2606:4700::1111"); raises socket.gaierror.
Resolver = Callable[[str], Awaitable[list[str]]]


async def resolve(host: str) -> list[str]:
    """The system's answer for `host` (an IP literal resolves to itself), in its order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Unresolvable(Exception):
    """The host has no address."""


class NotPublic(Exception):
    """The host resolves to at least one address outside the public internet.

    The message names the host, never the address: it is shown to the tenant, and an
    internal name's internal address is not theirs to learn.
    """


async def checked_addresses(host: str, resolver: Resolver, allow_private: bool) -> list[str]:
    """The addresses to connect to for `host`: all of them public, unless private ones are allowed."""
    try:
        addresses = await resolver(host)
    except (socket.gaierror, UnicodeError):
        addresses = []
    if not addresses:
        raise Unresolvable(f"the host {host!r} does not resolve")
    if not allow_private and not all(is_public(address) for address in addresses):
        raise NotPublic(
            f"{host!r} resolves to an address outside the public internet "
            "(loopback, private, shared, link-local, reserved or tunnelled)"
        )
    return addresses
