"""`prediction-store migrate`: create or upgrade the schema as its owner, grant the other roles.

Run before the services start (the credit-api chart runs it in an init container of the API
pod), with the owner's URL in $PREDICTION_STORE_URL (an environment variable, never an argument:
it holds a password). It waits for a database that is still starting, up to --wait seconds.

Exit codes: 0 migrated, 2 bad usage, 4 the database unreachable after --wait, 1 the database
refused (e.g. the user does not own the tables, or a role does not exist). Failures print one
line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import sqlalchemy as sa

from prediction_store.engine import create_store_engine
from prediction_store.migrate import upgrade

URL_VARIABLE = "PREDICTION_STORE_URL"
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 4
_RETRY_MAX_SECONDS = 10.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prediction-store", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser(
        "migrate", help=f"upgrade the schema as its owner (URL in ${URL_VARIABLE})"
    )
    migrate.add_argument("--writer", help="role to grant the writer's privileges (a service)")
    migrate.add_argument("--reader", help="role to grant the reader's privileges (drift jobs)")
    migrate.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the database to accept connections (default 300)",
    )
    return parser


def _first_line(error: BaseException) -> str:
    detail = getattr(error, "orig", None) or error
    return str(detail).strip().splitlines()[0] if str(detail).strip() else type(error).__name__


# What libpq answers when the database is there and says no: waiting will not change it.
_FINAL_ANSWERS = (
    "authentication failed",
    "no password supplied",
    "does not exist",
    "pg_hba.conf",
    "permission denied",
)


def _worth_waiting(error: sa.exc.DBAPIError) -> bool:
    """No answer yet (refused, timed out, a name not resolved yet) or "starting up": wait. A
    wrong password or a missing database or role answers the same every time: fail at once.
    (A failed connection has no SQLSTATE in psycopg: its message tells.)"""
    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
    if sqlstate:
        return sqlstate.startswith(("08", "57"))
    return not any(answer in str(error.orig) for answer in _FINAL_ANSWERS)


def migrate(url: str, writer: str | None, reader: str | None, wait: float) -> int:
    engine = create_store_engine(url)
    deadline = time.monotonic() + wait
    delay = 1.0
    try:
        while True:
            try:
                revision = upgrade(engine, writer=writer, reader=reader)
            except sa.exc.OperationalError as error:
                if not _worth_waiting(error):
                    print(f"prediction-store: the store refused: {_first_line(error)}",
                          file=sys.stderr)  # fmt: skip
                    return EXIT_REFUSED
                if time.monotonic() + delay > deadline:
                    print(f"prediction-store: store unavailable: {_first_line(error)}",
                          file=sys.stderr)  # fmt: skip
                    return EXIT_UNAVAILABLE
                print(f"prediction-store: waiting for the store: {_first_line(error)}",
                      file=sys.stderr)  # fmt: skip
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
            except sa.exc.DBAPIError as error:
                print(f"prediction-store: the store refused: {_first_line(error)}",
                      file=sys.stderr)  # fmt: skip
                return EXIT_REFUSED
            else:
                granted = ", ".join(
                    f"{kind} {role}" for kind, role in (("writer", writer), ("reader", reader))
                    if role
                )  # fmt: skip
                print(f"prediction-store: schema at revision {revision}"
                      + (f"; privileges granted to {granted}" if granted else ""))  # fmt: skip
                return 0
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        print(f"prediction-store: set {URL_VARIABLE} to the schema owner's URL", file=sys.stderr)
        return EXIT_USAGE
    return migrate(url, arguments.writer, arguments.reader, arguments.wait)


if __name__ == "__main__":
    sys.exit(main())
