"""What a service refuses, for pages, the API and webhooks to answer in their own way."""


class Forbidden(Exception):
    """The caller may not touch this object (answered 404 so ids are not probed)."""


class Invalid(ValueError):
    """A request that cannot be carried out, with a message for the user; `code` names the
    kind of refusal for API clients."""

    code = "invalid"


class ContactUnreachable(Invalid):
    """The contact blocked or stopped the conversation's bot, or deleted their account: nothing
    sent through this inbox reaches them until they start it again."""

    code = "contact_unreachable"
