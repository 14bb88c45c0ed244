"""Running Switchboard: `make run`'s launcher, the embedded PostgreSQL and Temporal dev servers,
the admin CLI and first-start seed data.

Tooling may import anything; the application (api, worker, web, services, infra, domain,
channels, activities, workflows) never imports it. `deploy/seed.py` runs the seed in production.
"""
