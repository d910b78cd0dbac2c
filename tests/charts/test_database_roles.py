"""The bundled PostgreSQL's roles, set up as the chart sets them up, on a real PostgreSQL.

What `helm template` renders is run the way the pod runs it: the roles script from the initdb
ConfigMap with the environment of the StatefulSet and the postgres image's entrypoint (psql on
the local socket, as the superuser, on the new database) and the password files of the Secret;
then the API pod's init container command, with the owner's URL from the Secret. The server
checks passwords (scram-sha-256) for every role but the test's own superuser, so each URL of
the Secret is proven to open its role. Then: the writer inserts and cannot change the schema,
the reader reads and cannot write, none is a superuser, and the API and the drift job do their
work end to end with those URLs.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from psycopg import errors

from credit_api.bundle import save_bundle
from credit_api.config import Settings
from credit_api.main import create_app
from credit_api.schemas import EXAMPLE_APPLICATION
from credit_api.training import train
from drift_job.cli import main as drift_job
from localkube.waiting import wait_for
from localservers.postgres import PostgresServer
from localservers.pytest_plugin import require_binary

from .charttools import Helm, find

pytestmark = pytest.mark.postgres

SUPERUSER_PASSWORD = "s3cret-of-the-superuser"
# The test connects as `postgres` (trust); every other role must give its password.
PG_HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


@dataclass(frozen=True)
class Rendered:
    """The chart's database objects, as `helm template` renders them."""

    script: str
    env: dict[str, str]  # the PostgreSQL container's literal env
    secret: dict[str, str]  # decoded
    password_items: dict[str, str]  # Secret key -> file name in the password volume
    migration: list[str]  # the API pod's init container: command + args
    migration_url_key: str


def render(helm: Helm) -> Rendered:
    objects = helm.template("credit-api", {"postgresql": {"password": SUPERUSER_PASSWORD}})
    config_map = find(objects, "ConfigMap", "credit-api-postgresql-initdb")
    statefulset = find(objects, "StatefulSet", "credit-api-postgresql")
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["initdb"] == "/docker-entrypoint-initdb.d"
    (password_volume,) = [v for v in pod["volumes"] if v["name"] == "password"]
    secret = find(objects, "Secret", "credit-api-db")
    (init,) = find(objects, "Deployment")["spec"]["template"]["spec"]["initContainers"]
    (url,) = init["env"]
    return Rendered(
        script=config_map["data"]["10-roles.sh"],
        env={e["name"]: e["value"] for e in container["env"] if "value" in e},
        secret={k: base64.b64decode(v).decode() for k, v in secret["data"].items()},
        password_items={i["key"]: i["path"] for i in password_volume["secret"]["items"]},
        migration=[*init["command"], *init["args"]],
        migration_url_key=url["valueFrom"]["secretKeyRef"]["key"],
    )


@dataclass(frozen=True)
class Database:
    server: PostgresServer
    rendered: Rendered

    def url(self, key: str) -> str:
        """A URL of the Secret, pointed at this server instead of the in-cluster Service."""
        url = sa.make_url(self.rendered.secret[key]).set(host="127.0.0.1", port=self.server.port)
        return url.render_as_string(hide_password=False)

    def libpq(self, key: str) -> str:
        return self.url(key).replace("postgresql+psycopg://", "postgresql://")

    def superuser(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.libpq_dsn("credit"), autocommit=True)


def run_roles_script(
    rendered: Rendered, server: PostgresServer, work: Path, how: str, **env_overrides: str
) -> None:
    """As the entrypoint does: psql on the local socket, PGPASSWORD set, the pod's env."""
    passwords = work / "secrets"
    passwords.mkdir(exist_ok=True)
    for key, name in rendered.password_items.items():
        (passwords / name).write_text(rendered.secret[key])
    script = work / "10-roles.sh"
    script.write_text(rendered.script)
    script.chmod(0o555)
    env = {
        "PATH": f"{require_binary('psql').parent}:{os.environ['PATH']}",
        **rendered.env,
        "CREDIT_DB_PASSWORDS_DIR": str(passwords),
        "PGHOST": str(server.base_dir),
        "PGPORT": str(server.port),
        "PGPASSWORD": rendered.secret["password"],
        **env_overrides,
    }
    # Executed (mode 0555, what the official entrypoint does), or sourced by its bash.
    command = [str(script)] if how == "executed" else [
        "bash", "-c", f'set -Eeo pipefail; . "{script}"; echo still-here',
    ]  # fmt: skip
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    if how == "sourced":
        assert finished.stdout.strip().endswith("still-here")


def run_migration(rendered: Rendered, url: str) -> subprocess.CompletedProcess[str]:
    """The API pod's init container: its command, with $PREDICTION_STORE_URL from the Secret."""
    command = [str(Path(sys.executable).parent / rendered.migration[0]), *rendered.migration[1:]]
    return subprocess.run(
        command, env={**os.environ, "PREDICTION_STORE_URL": url}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def database(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    require_binary("initdb")
    rendered = render(helm)
    server = PostgresServer()
    server.init()
    (server.data_dir / "pg_hba.conf").write_text(PG_HBA)
    server.start()
    try:
        superuser, name = rendered.env["POSTGRES_USER"], rendered.env["POSTGRES_DB"]
        with psycopg.connect(server.libpq_dsn(), autocommit=True) as connection:
            # What initdb and the entrypoint make of POSTGRES_USER and POSTGRES_DB.
            connection.execute(f'CREATE ROLE "{superuser}" SUPERUSER LOGIN')
            connection.execute(f'CREATE DATABASE "{name}" OWNER "{superuser}"')
        work = tmp_path_factory.mktemp("initdb")
        run_roles_script(rendered, server, work, "executed")
        # Idempotent, and harmless to the entrypoint's shell when sourced.
        run_roles_script(rendered, server, work, "sourced")
        migration = run_migration(rendered, Database(server, rendered).url(
            rendered.migration_url_key
        ))  # fmt: skip
        assert migration.returncode == 0, migration.stderr
        assert "privileges granted to writer credit_writer, reader credit_reader" in (
            migration.stdout
        )
        yield Database(server, rendered)
    finally:
        server.destroy()


def connect(database: Database, key: str) -> psycopg.Connection[Any]:
    return psycopg.connect(database.libpq(key), autocommit=True)


def test_every_url_of_the_secret_opens_its_role_and_none_is_a_superuser(
    database: Database,
) -> None:
    expected = {"owner-dsn": "credit_owner", "writer-dsn": "credit_writer"}
    expected["reader-dsn"] = "credit_reader"
    for key, role in expected.items():
        with connect(database, key) as connection:
            row = connection.execute(
                "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls"
                " FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
        assert row == (role, False, False, False, False)
    wrong = database.libpq("writer-dsn").replace(
        database.rendered.secret["writer-password"], "not-the-password"
    )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()


def test_a_wrong_password_fails_the_migration_at_once(database: Database) -> None:
    """Waiting is for a database still starting, not for one that says no."""
    rendered = database.rendered
    wrong = database.url("owner-dsn").replace(rendered.secret["owner-password"], "wrong")
    started = time.monotonic()
    finished = run_migration(rendered, wrong)
    assert finished.returncode == 1
    assert "the store refused" in finished.stderr
    assert "password authentication failed" in finished.stderr
    assert time.monotonic() - started < 30


def test_a_volume_from_before_the_roles_gets_them_by_running_the_script_again(
    database: Database, tmp_path: Path
) -> None:
    """Data initialised by an earlier chart: the superuser made the tables and the services
    used it. Running the roles script by hand hands the tables to the owner; the owner's
    migration then grants the others, and the writer writes."""
    rendered, server = database.rendered, database.server
    with database.superuser() as connection:
        connection.execute('CREATE DATABASE legacy OWNER "credit"')
    # As the superuser `credit`, as the services of the earlier chart did (on the socket).
    legacy = f"postgresql+psycopg://credit@/legacy?host={server.base_dir}&port={server.port}"
    finished = run_migration(rendered, legacy)
    assert finished.returncode == 0, finished.stderr
    run_roles_script(rendered, server, tmp_path, "executed", POSTGRES_DB="legacy")
    owner = sa.make_url(database.url("owner-dsn")).set(database="legacy")
    finished = run_migration(rendered, owner.render_as_string(hide_password=False))
    assert finished.returncode == 0, finished.stderr
    writer = sa.make_url(database.libpq("writer-dsn")).set(database="legacy")
    with psycopg.connect(
        writer.render_as_string(hide_password=False), autocommit=True
    ) as connection:
        connection.execute(INSERT_PREDICTION, _prediction("legacy-1"))
        with pytest.raises(errors.InsufficientPrivilege):
            connection.execute("DROP TABLE predictions")


def test_a_role_of_its_own_cannot_connect_to_the_store(database: Database) -> None:
    with database.superuser() as connection:
        connection.execute("CREATE ROLE stranger LOGIN PASSWORD 'stranger'")
    url = f"postgresql://stranger:stranger@127.0.0.1:{database.server.port}/credit"
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(url).close()


def _prediction(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id, "model": "m", "version": "1", "features": "{}",
        "score": 0.5, "decision": "good",
    }  # fmt: skip


INSERT_PREDICTION = (
    "INSERT INTO predictions (request_id, created_at, model, version, features, score, decision)"
    " VALUES (%(request_id)s, now(), %(model)s, %(version)s, %(features)s, %(score)s,"
    " %(decision)s)"
)


def test_the_writer_inserts_predictions_and_feedback(database: Database) -> None:
    with connect(database, "writer-dsn") as connection:
        connection.execute(INSERT_PREDICTION, _prediction("writer-1"))
        connection.execute(
            "INSERT INTO feedback (request_id, outcome, recorded_at) VALUES ('writer-1', 'bad',"
            " now()) ON CONFLICT (request_id) DO UPDATE SET outcome = excluded.outcome"
        )
        connection.execute(
            "INSERT INTO feedback (request_id, outcome, recorded_at) VALUES ('writer-1', 'good',"
            " now()) ON CONFLICT (request_id) DO UPDATE SET outcome = excluded.outcome"
        )
        outcome = connection.execute(
            "SELECT outcome FROM feedback WHERE request_id = 'writer-1'"
        ).fetchone()
    assert outcome == ("good",)


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE predictions",
        "ALTER TABLE predictions ADD COLUMN note text",
        "TRUNCATE predictions",
        "DELETE FROM predictions",
        "UPDATE predictions SET score = 1",
        "CREATE TABLE scratch (x int)",
        "DROP TABLE alembic_version",
        "INSERT INTO alembic_version VALUES ('9999')",
        "CREATE ROLE another",
    ],
)
def test_the_writer_cannot_change_the_schema_or_rewrite_history(
    database: Database, statement: str
) -> None:
    with (
        connect(database, "writer-dsn") as connection,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        connection.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        INSERT_PREDICTION,
        "UPDATE feedback SET outcome = 'bad'",
        "DELETE FROM models",
        "TRUNCATE reference_rows",
        "CREATE TABLE scratch (x int)",
    ],
)
def test_the_reader_reads_and_cannot_write(database: Database, statement: str) -> None:
    with connect(database, "reader-dsn") as connection:
        for table in ("models", "reference_rows", "predictions", "feedback"):
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        with pytest.raises(errors.InsufficientPrivilege):
            connection.execute(statement, _prediction("reader-1") if "%(" in statement else None)


def test_the_api_logs_as_the_writer_and_the_drift_job_reads_as_the_reader(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "model"
    save_bundle(train(), model_dir)
    settings = Settings(
        model_dir=model_dir,
        train_if_missing=False,
        database_url=database.url("writer-dsn"),
        log_flush_interval_seconds=0.05,
    )
    served: list[str] = []
    with TestClient(create_app(settings)) as client:
        wait_for(
            lambda: client.get("/readyz").status_code == 200,
            timeout=60,
            what="the API ready with its store (registered as the writer)",
        )
        for index in range(60):
            application = {**EXAMPLE_APPLICATION, "age_in_years": 20 + index}
            response = client.post("/api/v1/predict", json=application)
            assert response.status_code == 200, response.text
            served.append(response.json()["request_id"])
        for outcome in ("bad", "good"):  # a correction updates the first
            answer = client.post(
                "/api/v1/feedback", json={"request_id": served[0], "outcome": outcome}
            )
            assert answer.status_code == 200, answer.text

    with database.superuser() as connection:
        logged = connection.execute(
            "SELECT count(*) FROM predictions WHERE request_id = ANY(%s)", (served,)
        ).fetchone()
        feedback = connection.execute(
            "SELECT outcome FROM feedback WHERE request_id = %s", (served[0],)
        ).fetchone()
        registered = connection.execute("SELECT count(*) FROM models").fetchone()
    assert logged == (len(served),)
    assert feedback == ("good",)
    assert registered == (1,)

    started = time.monotonic()
    code = drift_job(["--store-url", database.url("reader-dsn"), "--model", "credit-score",
                      "--min-rows", "50", "--window", "1h", "--output", "json"])  # fmt: skip
    output = capsys.readouterr()
    assert code == 0, output.err
    assert '"result": "Completed"' in output.out
    assert '"current": 60' in output.out
    assert time.monotonic() - started < 120


def test_the_script_is_plain_sh() -> None:
    """The entrypoint may run it with sh: nothing bash-only (checked by dash when present)."""
    dash = shutil.which("dash")
    if dash is None:
        pytest.skip("dash is not installed")
    script = Path(__file__).parents[2] / "charts/credit-api/files/initdb/10-roles.sh"
    checked = subprocess.run([dash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
