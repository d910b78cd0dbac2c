"""Real servers (PostgreSQL, Prometheus, Alertmanager) on loopback, for tests and local runs."""
