"""Outbound webhooks: fan events out to endpoints, deliver them signed, retry on schedule."""
