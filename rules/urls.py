"""Is a URL well formed: it parses, its port is a port, its host is an IP address or a DNS name?

Only the shape: which schemes and which addresses are acceptable is each use's own rule
(`rules.webhooks` for endpoints). A host that no resolver or HTTP client could encode
(a 64-character label, a 254-character name, an empty label, spaces or control
characters) is refused here, before anything tries to resolve or reach it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import idna

from rules.errors import InvalidUrl

MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63

# Spaces and control characters (C0, DEL, C1) have no place anywhere in a URL.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")
# Letters, digits, hyphens and (as some DNS names have them) underscores.
_LABEL = re.compile(r"[a-z0-9_-]+")
# What HTTP clients treat as an IPv4 address, so it must be one.
_IPV4_STYLE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def check_well_formed(url: str) -> None:
    """InvalidUrl (422 `invalid_url`) saying what is wrong, unless `url` is well formed.

    A URL without a host passes when its scheme is not http(s): whether such a URL is
    acceptable at all is the caller's rule.
    """
    unsafe = _UNSAFE.search(url)
    if unsafe:
        raise InvalidUrl(
            f"the URL must not contain spaces or control characters; found "
            f"{unsafe.group()!r} at position {unsafe.start()}"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidUrl(f"not a valid URL: {exc}") from None
    host = parts.hostname
    if not host:
        if parts.scheme in ("http", "https"):
            raise InvalidUrl(f"the URL {_shown(url)} has no host; send a URL like https://example.com/hooks")
        return
    if "[" in parts.netloc:
        return  # an IPv6 literal, already checked by urlsplit
    check_host(host)


def check_host(host: str) -> None:
    """InvalidUrl unless `host` is an IPv4 address or a DNS name that encodes to ASCII."""
    if _IPV4_STYLE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidUrl(f"the host {_shown(host)} is not a valid IPv4 address") from None
        return
    name = host.removesuffix(".")  # a fully qualified name may end with the root's dot
    labels = name.split(".")
    for label in labels:
        if not label:
            raise InvalidUrl(f"the host {_shown(host)} has an empty label (a leading dot or two dots in a row)")
    ascii_labels = [label if label.isascii() else _a_label(host, label) for label in labels]
    for label in ascii_labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidUrl(
                f"the host {_shown(host)} has a label of {len(label)} characters; each "
                f"label must be 1 to {MAX_LABEL_LENGTH} characters"
            )
        if not _LABEL.fullmatch(label):
            raise InvalidUrl(f"the host {_shown(host)} may hold only letters, digits, hyphens, underscores and dots")
    length = len(".".join(ascii_labels))
    if length > MAX_HOST_LENGTH:
        raise InvalidUrl(
            f"the host {_shown(host)} is {length} characters long once encoded; a host "
            f"name must be at most {MAX_HOST_LENGTH}"
        )


def _a_label(host: str, label: str) -> str:
    """An internationalised label in its ASCII form, as both the resolver and HTTP clients encode it."""
    try:
        label.encode("idna")  # what the system resolver is given
        return idna.alabel(label).decode("ascii")  # what HTTP clients send
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidUrl(f"the host {_shown(host)} is not a valid internationalised name: {exc}") from None
