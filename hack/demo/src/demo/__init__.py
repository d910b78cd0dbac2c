"""The whole product on one machine: `python -m demo`, and the harness tests/e2e shares."""
