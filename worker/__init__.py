"""Dramatiq actors, the broker, the relay and the scheduler."""
