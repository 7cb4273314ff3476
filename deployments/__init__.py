"""Schedules and serving entry points."""
