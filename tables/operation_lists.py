"""An organization's own operations, as its members list them: the filter, keyset pages, count and
export batches."""

from dataclasses import dataclass
from datetime import datetime

from tables import keyset
from tables.operations import PUBLIC_FIELDS, Operation, OperationRecord, records


@dataclass(frozen=True)
class OrgFilter:
    """An organization's operations, without the kinds the reader may not see."""

    organization_id: str
    kind: str | None = None
    status: str | None = None
    since: datetime | None = None  # created_at >= this
    hidden_kinds: frozenset[str] = frozenset()

    def conditions(self) -> list:
        found = [Operation.organization_id == self.organization_id]
        if self.kind:
            found.append(Operation.kind == self.kind)
        if self.status:
            found.append(Operation.status == self.status)
        if self.since is not None:
            found.append(Operation.created_at >= self.since)
        if self.hidden_kinds:
            found.append(Operation.kind.not_in(sorted(self.hidden_kinds)))
        return found

    def select(self):
        return Operation.select(*PUBLIC_FIELDS).where(*self.conditions()).output(load_json=True)


async def org_page(wanted: OrgFilter, order: keyset.Keyset, limit: int) -> list[OperationRecord]:
    return records(await keyset.page(wanted.select, order, limit))


async def org_count(wanted: OrgFilter) -> int:
    return await Operation.count().where(*wanted.conditions())


def org_batches(wanted: OrgFilter, order: keyset.Keyset):
    return keyset.batches(wanted.select, order)
