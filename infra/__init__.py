"""Infrastructure: settings, database engine and models, Temporal client, embedded dev servers."""
