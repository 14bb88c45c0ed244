"""The use cases pages, the API, webhooks and activities call: ingesting what customers send,
conversation actions, operator status, assignment, inboxes, dead letters, the typing indicator,
audit entries, queueing outgoing messages and the transactional outbox that tells workflows.

Services write PostgreSQL through `infra` and decide with the pure rules in `domain`. They do
not import web, activities, workflows or setup; HTTP and Temporal details stay at the edges.
"""
