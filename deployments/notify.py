"""Being told: Prefect automations that notify when a tailor deployment's run goes wrong.

``tailor deploy --notify URL`` saves a webhook notification block (a JSON POST whose ``text``
field Slack, Mattermost and Teams' incoming webhooks display as it is) and two automations on
the server, both scoped to the deployments just registered:

- :data:`RUNS_AUTOMATION`: a flow run of them entered Failed, Crashed or Late. Late is how the
  server says that nothing picked a scheduled run up: the runner (``tailor serve-flows``) or
  every worker of the pool is down;
- :data:`RUNNER_AUTOMATION`: a deployment went not-ready (no runner or worker has polled for it
  lately), which says the same before any run is due.

``--notify block:SLUG/NAME`` uses a notification block the operator already configured instead
(``slack-webhook/ops``, ``email/oncall``...). Re-running ``tailor deploy --notify`` replaces
both automations; the server runs them (its triggers and actions services), so nothing of
tailor needs to be up for a notification to go out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

RUNS_AUTOMATION = "tailor: run failed, crashed or late"
RUNNER_AUTOMATION = "tailor: no runner for a deployment"
WEBHOOK_BLOCK = "tailor-notify"
RUN_EVENTS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.Late")
NOT_READY_EVENT = "prefect.deployment.not-ready"
BLOCK_PREFIX = "block:"

RUN_SUBJECT = "tailor: {{ flow_run.name }} ({{ deployment.name }}) is {{ flow_run.state.name }}"
RUN_BODY = (
    "Flow run {{ flow_run.name }} of deployment {{ flow.name }}/{{ deployment.name }} entered "
    "{{ flow_run.state.name }} at {{ flow_run.state.timestamp }}.\n"
    "Message: {{ flow_run.state.message }}\n"
    "Run page: {{ flow_run|ui_url }} (flow run id {{ flow_run.id }}; the link needs "
    "PREFECT_UI_URL on the server)\n"
    "What to do: docs/operations.md, 'When a run fails, crashes or is late'."
)
RUNNER_SUBJECT = "tailor: no runner polls for {{ deployment.name }}"
RUNNER_BODY = (
    "Deployment {{ deployment.name }} is not ready: no `tailor serve-flows` or worker has "
    "polled for it lately, so its scheduled runs will go Late.\n"
    "Deployment: {{ deployment|ui_url }}\n"
    "What to do: docs/operations.md, 'The runner is down'."
)


class NotifyError(ValueError):
    """The notification target cannot be used; the message says why."""


@dataclass(frozen=True)
class Notification:
    """What ``--notify`` set up on the server."""

    block: str
    automations: dict[str, UUID]


def _block_document_id(target: str) -> tuple[str, UUID]:
    """The notification block for ``target`` (a URL, or ``block:SLUG/NAME``), saved if new."""
    from prefect.blocks.core import Block
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    if target.startswith(BLOCK_PREFIX):
        slug = target.removeprefix(BLOCK_PREFIX)
        try:
            block = Block.load(slug)
        except ValueError as exc:
            raise NotifyError(f"--notify {target}: no such block on the server ({exc})") from None
        if not hasattr(block, "notify"):
            raise NotifyError(f"--notify {target}: {slug} is not a notification block")
        return slug, block._block_document_id
    if not target.startswith(("http://", "https://")):
        raise NotifyError(f"--notify {target!r}: give an http(s):// webhook URL or "
                          f"{BLOCK_PREFIX}SLUG/NAME (an existing notification block)")
    webhook = CustomWebhookNotificationBlock(
        name=WEBHOOK_BLOCK, url=target, method="POST",
        json_data={"text": "{{subject}}\n{{body}}", "subject": "{{subject}}",
                   "body": "{{body}}"},
        # the operator chose this URL; an on-premises alert receiver is often private
        allow_private_urls=True)
    document_id = webhook.save(WEBHOOK_BLOCK, overwrite=True)
    return f"custom-webhook/{WEBHOOK_BLOCK}", document_id


def _replace(client: object, automation: object) -> UUID:
    """Create ``automation`` after deleting any of the same name (re-deploys replace it)."""
    for old in client.read_automations_by_name(automation.name):  # type: ignore[attr-defined]
        client.delete_automation(old.id)  # type: ignore[attr-defined]
    return automation.create().id  # type: ignore[attr-defined]


def set_up_notifications(target: str, deployment_ids: Iterable[UUID]) -> Notification:
    """Save the notification block and (re)create both automations for ``deployment_ids``."""
    from datetime import timedelta

    from prefect.automations import Automation, EventTrigger, Posture, SendNotification
    from prefect.client.orchestration import get_client

    resources = [f"prefect.deployment.{d}" for d in deployment_ids]
    if not resources:
        raise NotifyError("no deployment to watch")
    block, document_id = _block_document_id(target)
    runs = Automation(
        name=RUNS_AUTOMATION,
        description="Notify when a run of a tailor deployment fails, crashes or is late "
                    "(created by `tailor deploy --notify`).",
        trigger=EventTrigger(
            expect=set(RUN_EVENTS),
            match_related={"prefect.resource.role": "deployment",
                           "prefect.resource.id": resources},
            posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[SendNotification(block_document_id=document_id, subject=RUN_SUBJECT,
                                  body=RUN_BODY)])
    runner = Automation(
        name=RUNNER_AUTOMATION,
        description="Notify when no runner or worker polls for a tailor deployment "
                    "(created by `tailor deploy --notify`).",
        trigger=EventTrigger(
            expect={NOT_READY_EVENT}, match={"prefect.resource.id": resources},
            posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[SendNotification(block_document_id=document_id, subject=RUNNER_SUBJECT,
                                  body=RUNNER_BODY)])
    with get_client(sync_client=True) as client:
        ids = {automation.name: _replace(client, automation) for automation in (runs, runner)}
    return Notification(block, ids)
