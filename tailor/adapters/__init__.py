"""Adapters to the stores: MLflow tracking and registry, pyfunc models, champions, file outputs.

Plain library code (no Prefect): the CLI and the serving app import these directly; the Prefect
tasks in ``tailor.tasks`` wrap them for the flows.
"""
