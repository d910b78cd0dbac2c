"""`reports-ui`: the Evidently UI over the workspace the drift jobs write (docs/contracts.md).

Evidently's own `evidently ui`, with two things a shared volume needs:

- new runs show up however the volume is shared. Evidently learns of new files from the
  kernel's change notifications (inotify), which see writes made on the same node only; on a
  ReadWriteMany volume (NFS, CephFS) the jobs of other nodes write unseen. With
  `--poll-seconds` the workspace is scanned on a timer instead, which sees every write.
- the UI mounts the volume read-only, so it cannot create the workspace before the first run;
  `--prepare` (the chart's init container) creates it and exits.

Telemetry stays off (DO_NOT_TRACK): the UI never calls out.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drift_job.workspace import staging_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reports-ui",
        description="The Evidently UI over the drift runs' workspace.",
    )
    add = parser.add_argument
    add("--workspace", required=True, help="the Evidently workspace the drift jobs write")
    add("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    add("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    add(
        "--poll-seconds",
        type=float,
        default=0,
        help="scan the workspace for new runs this often instead of relying on change"
        " notifications, which miss writes from other nodes (default: 0, notifications)",
    )
    add(
        "--prepare",
        action="store_true",
        help="create the workspace (and its staging directory) if missing, and exit",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workspace = Path(args.workspace)
    if args.prepare:
        workspace.mkdir(parents=True, exist_ok=True)
        staging_dir(workspace).mkdir(exist_ok=True)
        print(f"reports-ui: workspace {workspace} ready", file=sys.stderr)
        return 0
    if not workspace.is_dir():
        print(
            f"reports-ui: {workspace} is not a directory; create it with --prepare (the chart's"
            " init container does) or let a drift run with --workspace create it",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("DO_NOT_TRACK", "1")
    _watch_workspace(args.poll_seconds)
    from evidently.ui.service.app import get_config, run  # noqa: PLC0415 - after the checks

    run(get_config(host=args.host, port=args.port, workspace=str(workspace)))
    return 0


def _watch_workspace(poll_seconds: float) -> None:
    """Make Evidently watch its workspace with our watcher: notified, or polled when asked.

    Evidently 0.7 starts its watcher in `start_workspace_watchdog`, looked up in its module when
    the workspace is first opened; the replacement schedules Evidently's own handler, taught
    one thing: a project that appears may hold runs already. A poll finds a monitor's first
    run and its project at once and reports them in any order; Evidently's handler drops a run
    of a project it does not know yet, and would never show that run.
    """
    from evidently.ui.service.storage import local  # noqa: PLC0415
    from evidently.ui.service.storage.local.watcher import WorkspaceDirHandler  # noqa: PLC0415
    from watchdog.observers import Observer  # noqa: PLC0415
    from watchdog.observers.polling import PollingObserver  # noqa: PLC0415

    class Handler(WorkspaceDirHandler):  # type: ignore[misc]
        def on_project_event(self, event: Any) -> None:
            super().on_project_event(event)
            found = self.parse_project_id(event.src_path)
            if found is not None and uuid.UUID(found) in self.state.projects:
                self.state.reload_snapshots(uuid.UUID(found))

    def start(path: str, state: Any) -> None:
        observer = PollingObserver(timeout=poll_seconds) if poll_seconds > 0 else Observer()
        observer.schedule(Handler(state), path, recursive=True)
        observer.daemon = True
        observer.start()
        how = f"scanning it every {poll_seconds:g}s" if poll_seconds > 0 else "notified"
        print(f"reports-ui: watching {path} for new runs ({how})", file=sys.stderr)

    local.start_workspace_watchdog = start


if __name__ == "__main__":
    sys.exit(main())
