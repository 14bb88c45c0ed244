"""Links into the cabinet that leave the system (Bitrix24 tasks, staff notifications): spelled
once, so they follow the cabinet's routes."""


def conversation_url(public_url: str, conversation_id: int) -> str:
    return f"{public_url.rstrip('/')}/conversations/{conversation_id}"
