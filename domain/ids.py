"""Workflow ids: the one place they are spelled."""


def conversation_workflow_id(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def delivery_workflow_id(message_id: int) -> str:
    return f"delivery-{message_id}"


def poller_workflow_id(inbox_id: int) -> str:
    return f"poller-{inbox_id}"


def files_workflow_id(message_id: int) -> str:
    """Fetches an inbound message's attachments into our store."""
    return f"files-{message_id}"


def webhook_endpoint_workflow_id(endpoint_id: int) -> str:
    """Drains one outgoing-webhook endpoint's queue."""
    return f"webhook-endpoint-{endpoint_id}"


def bitrix24_task_workflow_id(conversation_id: int, purpose: str) -> str:
    """Creates one Bitrix24 task for a conversation (one per purpose)."""
    return f"b24-task-{conversation_id}-{purpose}"


def staff_notifier_workflow_id(rule_id: int) -> str:
    """Sends one staff notification rule's Telegram messages."""
    return f"staff-notify-{rule_id}"


# singletons the worker starts at boot
HOUSEKEEPING_WORKFLOW_ID = "housekeeping"
WEBHOOK_CHECK_WORKFLOW_ID = "webhook-check"
PRESENCE_SWEEP_WORKFLOW_ID = "presence-sweep"
