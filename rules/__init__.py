"""Pure domain rules of tenure: money, permissions, pricing, lifecycle, ledger."""
