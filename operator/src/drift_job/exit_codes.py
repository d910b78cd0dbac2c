"""The drift job's exit codes (docs/contracts.md): what a CronJob's failed Job means."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    BAD_CONFIG = 2
    INSUFFICIENT_DATA = 3
    STORE_OR_API = 4


MEANINGS = {
    ExitCode.OK: "ran (drift found or not)",
    ExitCode.ERROR: "anything else",
    ExitCode.BAD_CONFIG: "bad configuration (InvalidConfiguration)",
    ExitCode.INSUFFICIENT_DATA: (
        "too little data in the window (InsufficientData, not a failure; with --monitor, once "
        "the status says so, 0)"
    ),
    ExitCode.STORE_OR_API: (
        "store unreachable or reference missing (after retries), or the monitor's status not "
        "written (the Kubernetes API unreachable or refusing)"
    ),
}


def describe() -> str:
    """One line per exit code, in numeric order (for --help)."""
    return "\n".join(f"  {code.value}  {MEANINGS[code]}" for code in sorted(ExitCode))
