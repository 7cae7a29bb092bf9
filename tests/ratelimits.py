"""Rate limits for the tests that are not about them: counted as in production, never reached.

Tests about a limit set it low themselves (tests/api/test_rate_limits.py).
"""

from __future__ import annotations

HIGH = "1000000/minute"
LIMITS = ("per_key", "auth_failures", "signups", "claims")

# Settings(**UNLIMITED, ...) in-process; UNLIMITED_ENV for `tenure` processes.
UNLIMITED = {f"rate_limit_{name}": HIGH for name in LIMITS}
UNLIMITED_ENV = {f"TENURE_RATE_LIMIT_{name.upper()}": HIGH for name in LIMITS}
