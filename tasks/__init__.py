"""Thin Prefect tasks over tailor's plain-Python code, plus tracking and registry adapters."""
