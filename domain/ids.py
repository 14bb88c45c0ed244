"""Workflow ids and task queues: the one place they are spelled."""

TASK_QUEUE = "switchboard"


def conversation_workflow_id(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def delivery_workflow_id(message_id: int) -> str:
    return f"delivery-{message_id}"


def poller_workflow_id(inbox_id: int) -> str:
    return f"poller-{inbox_id}"
