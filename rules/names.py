"""Product names: domain names in IDNA A-label form, other names as plain text."""

from __future__ import annotations

import re
import unicodedata

import idna

from rules.errors import InvalidName

MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_OTHER_LENGTH = 200

# After IDNA encoding every label is ASCII letters, digits and inner hyphens.
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def normalize(kind: str, name: str) -> str:
    """The canonical form of `name` for a product of `kind`, or InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"name must be a string, got {type(name).__name__}")
    if kind == "domain":
        return _normalize_domain(name)
    return _normalize_other(name)


def _invalid_domain(name: str, problem: str) -> InvalidName:
    return InvalidName(f"domain name {name!r} is not valid: {problem}; send a name like example.com")


def _normalize_domain(name: str) -> str:
    text = name.strip().lower()
    # A fully qualified name may end with the root's dot; it names the same domain.
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise _invalid_domain(name, "it is empty")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise _invalid_domain(name, str(error)) from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise _invalid_domain(name, "it needs at least two labels separated by a dot")
    for label in labels:
        if not 1 <= len(label) <= MAX_LABEL_LENGTH:
            raise _invalid_domain(name, f"each label must be 1 to {MAX_LABEL_LENGTH} characters")
        if not _LDH_LABEL.fullmatch(label):
            raise _invalid_domain(
                name, f"label {label!r} may hold only letters, digits and inner hyphens"
            )
    if len(ascii_name) > MAX_DOMAIN_LENGTH:
        raise _invalid_domain(name, f"it must be at most {MAX_DOMAIN_LENGTH} characters long")
    if labels[-1].isdigit():
        # An all-digit top-level label would make IP addresses look like domains.
        raise _invalid_domain(name, "the top-level label cannot be all digits")
    return ascii_name


def _normalize_other(name: str) -> str:
    text = name.strip()
    if not 1 <= len(text) <= MAX_OTHER_LENGTH:
        raise InvalidName(
            f"name must be 1 to {MAX_OTHER_LENGTH} characters after trimming spaces, "
            f"got {len(text)}"
        )
    # Control characters and lone surrogates break logs, JSON and databases.
    bad = [char for char in text if _is_control(char)]
    if bad:
        raise InvalidName(
            f"name must not contain control characters; remove {', '.join(map(repr, bad))}"
        )
    return text


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs")
