"""Custom search attributes a supervisor filters on in the Temporal UI.

Registered by the dev server at start (see `setup/devstack.py`) and in production by the
`temporal operator search-attribute create` step of docker-compose.yml.
"""

from temporalio.common import SearchAttributeKey

CHANNEL = SearchAttributeKey.for_keyword("Channel")
BRANCH_ID = SearchAttributeKey.for_int("BranchId")
ASSIGNEE_ID = SearchAttributeKey.for_int("AssigneeId")
CONVERSATION_STATUS = SearchAttributeKey.for_keyword("ConversationStatus")

ALL = {
    CHANNEL.name: "Keyword",
    BRANCH_ID.name: "Int",
    ASSIGNEE_ID.name: "Int",
    CONVERSATION_STATUS.name: "Keyword",
}
