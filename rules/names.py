"""Product names: domain names in IDNA A-label form, other names as plain text."""

from __future__ import annotations

import re
import unicodedata

import idna

from rules.catalog import Kind
from rules.errors import InvalidName

MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_OTHER_LENGTH = 200
# Bounds the work UTS 46 mapping does on hostile input; mapping may drop characters.
_MAX_DOMAIN_INPUT = 4 * MAX_DOMAIN_LENGTH

# What registries accept once encoded; pins the result whatever idna's tables allow.
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def normalize(kind: str, name: str) -> str:
    """The canonical form of `name` for a product of `kind`, or InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"name must be a string, got {type(name).__name__}")
    if kind == Kind.DOMAIN:
        return _normalize_domain(name)
    return _normalize_other(name)


def _invalid_domain(name: str, problem: str) -> InvalidName:
    # Echo enough of the name to recognise it, not a megabyte of hostile input.
    shown = name if len(name) <= 80 else name[:77] + "..."
    return InvalidName(f"domain name {shown!r} is not valid: {problem}; send a name like example.com")


def _normalize_domain(name: str) -> str:
    text = name.strip().lower()
    if not text:
        raise _invalid_domain(name, "it is empty")
    if len(text) > _MAX_DOMAIN_INPUT:
        raise _invalid_domain(name, f"it must be at most {MAX_DOMAIN_LENGTH} characters long")
    try:
        mapped = idna.uts46_remap(text)
    except (idna.IDNAError, UnicodeError) as error:
        raise _invalid_domain(name, str(error)) from None
    # A fully qualified name may end with the root's dot; it names the same domain.
    labels = mapped.removesuffix(".").split(".")
    if len(labels) < 2:
        raise _invalid_domain(name, "it needs at least two labels separated by a dot")
    ascii_labels = [_a_label(name, label) for label in labels]
    ascii_name = ".".join(ascii_labels)
    if len(ascii_name) > MAX_DOMAIN_LENGTH:
        raise _invalid_domain(
            name,
            f"it is {len(ascii_name)} characters once encoded; it must be at most {MAX_DOMAIN_LENGTH}",
        )
    if ascii_labels[-1].isdigit():
        # An all-digit top-level label would make IP addresses look like domains.
        raise _invalid_domain(name, "the top-level label cannot be all digits")
    return ascii_name


def _a_label(name: str, label: str) -> str:
    """One mapped label in A-label form, or InvalidName saying what is wrong with it."""
    if not label:
        raise _invalid_domain(name, "labels cannot be empty (a leading dot or two dots in a row)")
    # Measured before idna.alabel, whose own error would not say the limit.
    encoded_length = len(label) if label.isascii() else 4 + len(label.encode("punycode"))
    if encoded_length > MAX_LABEL_LENGTH:
        raise _invalid_domain(
            name,
            f"label {label[:20]!r}... is {encoded_length} characters once encoded; "
            f"each label must be 1 to {MAX_LABEL_LENGTH} characters",
        )
    try:
        ascii_label = idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise _invalid_domain(name, f"label {label!r}: {error}") from None
    if not _LDH_LABEL.fullmatch(ascii_label):
        raise _invalid_domain(name, f"label {label!r} may hold only letters, digits and inner hyphens")
    return ascii_label


def _normalize_other(name: str) -> str:
    text = name.strip()
    if not 1 <= len(text) <= MAX_OTHER_LENGTH:
        raise InvalidName(f"name must be 1 to {MAX_OTHER_LENGTH} characters after trimming spaces, got {len(text)}")
    # Control characters and lone surrogates break logs, JSON and databases.
    bad = [char for char in text if _is_control(char)]
    if bad:
        raise InvalidName(f"name must not contain control characters; remove {', '.join(map(repr, bad))}")
    return text


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs")


def search_forms(query: str) -> tuple[str, ...]:
    """The lower-case texts a name search for `query` looks for in stored names.

    Domain names are stored in A-label form (see `normalize`), so a Unicode query is also
    looked for encoded: each dot-separated part mapped and encoded as a label is, so `café`
    and `Café.fr` find `xn--caf-dma.fr`. Punycode encodes a label as a whole, so an encoded
    part finds whole labels (and ASCII queries find any part of a stored name).
    """
    text = query.strip().lower()[:_MAX_DOMAIN_INPUT]
    forms = [text]
    if not text.isascii():
        try:
            mapped = idna.uts46_remap(text)
            forms.append(
                ".".join(part if part.isascii() else idna.alabel(part).decode("ascii") for part in mapped.split("."))
            )
        except (idna.IDNAError, UnicodeError, ValueError):
            pass  # not encodable as a domain name: only the text itself can match
    return tuple(dict.fromkeys(form for form in forms if form))
