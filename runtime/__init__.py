"""What every tenure process shares and that is neither storage nor a rule: its settings (read from
the environment once), the clock (UTC, movable by tests) and public ids. Imports nothing of ours."""
