"""Settings in the cabinet: the admin pages (branches and working hours, operators, inboxes,
canned replies, labels, audit log, health) and each operator's own profile. Routes check the
role on every request; templates live under `templates/settings/`."""
