"""Flow run names that say what a run is: ``retrain-2011-09-10-3f9c2a1b``, not ``amber-mandrill``.

The name needs the data's fingerprint, known only after validation, so a run is renamed once
that is known, and with it the command's flow run above it (``train-models`` above
``train-challengers``): the run list in the Prefect UI then reads by scoring date and data.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext


def run_stamp(as_of: str, fingerprint: str) -> str:
    """``<as_of>-<first 8 of the fingerprint>``: one stamp for flow runs and MLflow runs."""
    return f"{as_of}-{fingerprint[:8]}"


def pending_name(prefix: str) -> Callable[[], str]:
    """The name a run starts with, before its data is read: ``<prefix>-<as_of or latest>``."""
    def name() -> str:
        from prefect.runtime import flow_run

        return f"{prefix}-{flow_run.parameters.get('as_of') or 'latest'}"

    return name


def name_flow_runs(name: str, parent_flows: dict[str, str]) -> None:
    """Rename this flow run ``name``; its parent flow run too when it is a run of one of
    ``parent_flows`` (flow name -> new run name). Renaming is cosmetic: a server that does not
    answer costs a warning, never the run."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    run = context.flow_run
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(run.id, name=name)
            if run.parent_task_run_id is None:
                return
            parent_task = client.read_task_run(run.parent_task_run_id)
            parent = client.read_flow_run(parent_task.flow_run_id)
            flow = client.read_flow(parent.flow_id)
            if flow.name in parent_flows:
                client.update_flow_run(parent.id, name=parent_flows[flow.name])
    except Exception as exc:  # noqa: BLE001 - cosmetic: any client error is only a warning
        get_run_logger().warning("could not rename the flow run to %s: %s", name, exc)
