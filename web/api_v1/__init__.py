"""The integrators' REST API (`/api/v1/...`): token-authenticated, problem+json errors
(web/problems.py), cursor pagination, Idempotency-Key on writes."""
