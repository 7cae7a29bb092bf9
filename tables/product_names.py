"""Names held: a domain name is held by one live product at a time (a sandbox's among sandboxes
only), through its products row's unique name key."""

from rules.catalog import Kind
from tables.statements import Statement, fetch

_NAME_HELD = Statement("SELECT 1 AS held FROM products WHERE name_key = {} LIMIT 1")
# The same as a condition, for a statement that writes unless the name is held (tables.operation_activity).
NAME_HELD = "EXISTS (SELECT 1 FROM products WHERE name_key = {})"


def name_key(kind: str, name: str, sandbox: bool = False) -> str | None:
    """Only domain names are exclusive: one live product holds a name at a time. Sandboxes
    hold names among themselves only: theirs never block a production purchase, nor the reverse."""
    if kind != Kind.DOMAIN:
        return None
    return f"sandbox:{kind}:{name}" if sandbox else f"{kind}:{name}"


async def name_held(kind: str, name: str, sandbox: bool = False) -> bool:
    key = name_key(kind, name, sandbox)
    if key is None:
        return False
    return bool(await fetch(_NAME_HELD, key))
