"""A build that fails or is interrupted says why, once, and leaves no compiler behind.

A fake `go` on PATH stands in for the real one where the failure itself is the subject (a real
one would have to be broken first); the module proxy test uses the real go.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from localkube import gotool
from localkube.build import ETCD_SERVER, cache_dir_for, ensure_binaries
from localkube.crds import prometheus_operator_crd_paths
from localkube.errors import BuildError, LocalkubeError, MissingToolError
from localkube.gotool import go_directive
from localkube.paths import go_modules_dir
from localkube.processes import pid_alive
from localkube.waiting import wait_for

from .sessiontools import pytest_env, run_pytest

FAKE_PROXY = "https://proxy.example.test,direct"


def fake_go(folder: Path, build: str) -> Path:
    """A `go` that answers `env GOPROXY`, cannot list, and runs the shell code ``build``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "go"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  env) echo '{FAKE_PROXY}' ;;\n"
        "  list) exit 1 ;;\n"
        f"  build)\n{textwrap.indent(build, '    ')}\n    ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return script


def failing_build(output: str) -> str:
    """Shell code that prints ``output`` on stderr, as go does, and fails."""
    return f"printf '%s\\n' {shlex.quote(output)} >&2\nexit 1"


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CREDIT_MONITORING_CACHE", str(cache))
    return cache


def build_with_fake_go(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, output: str
) -> tuple[str, list[str]]:
    fake_go(tmp_path / "fake-go", failing_build(output))
    monkeypatch.setenv("PATH", f"{tmp_path / 'fake-go'}{os.pathsep}{os.environ['PATH']}")
    messages: list[str] = []
    with pytest.raises(BuildError) as failed:
        ensure_binaries((ETCD_SERVER,), messages.append)
    return str(failed.value), messages


@pytest.mark.usefixtures("empty_cache")
def test_an_unreachable_module_proxy_is_named_with_the_fixes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    message, messages = build_with_fake_go(
        monkeypatch,
        tmp_path,
        "go: downloading go.etcd.io/etcd/server/v3 v3.6.16\n"
        'go: go.etcd.io/etcd/server/v3@v3.6.16: Get "https://proxy.example.test/go.etcd.io/'
        'etcd/server/v3/@v/v3.6.16.zip": dial tcp: lookup proxy.example.test: no such host',
    )
    assert f"Go module proxy (GOPROXY={FAKE_PROXY})" in message
    assert "no such host" in message
    assert "network access" in message
    assert "set GOPROXY" in message
    assert "GOMODCACHE" in message
    assert "too old" not in message
    # Said before the silent download, so a cold module cache never looks hung.
    assert messages[1].startswith("resolving and downloading the Go modules of etcd")


@pytest.mark.usefixtures("empty_cache")
def test_a_too_old_go_is_told_the_version_the_wrapper_module_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    message, _ = build_with_fake_go(
        monkeypatch,
        tmp_path,
        "go: go.mod requires go >= 1.99.0 (running go 1.22.2; GOTOOLCHAIN=local)",
    )
    go_mod = (go_modules_dir() / "etcd" / "go.mod").read_text()
    required = next(line.split()[1] for line in go_mod.splitlines() if line.startswith("go "))
    assert go_directive(go_modules_dir() / "etcd" / "go.mod") == required
    assert f"needs Go {required} or newer" in message
    assert "running go 1.22.2" in message
    assert "proxy" not in message


@pytest.mark.usefixtures("empty_cache")
def test_any_other_failure_shows_the_end_of_gos_output_and_no_guesses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    output = "\n".join(f"server/x.go:{n}: undefined: thing{n}" for n in range(1, 41))
    message, _ = build_with_fake_go(monkeypatch, tmp_path, output)
    assert "undefined: thing40" in message
    assert "undefined: thing1\n" not in message  # only the last lines
    assert "proxy" not in message
    assert "too old" not in message


@pytest.mark.usefixtures("empty_cache")
def test_a_compile_error_is_shown_even_when_go_went_on_compiling_other_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """go build -v prints each package it compiles and does not stop at the first error."""
    error = [
        "# github.com/smacker/go-tree-sitter",
        "../go-tree-sitter@v0.0.0/iter.go:17:18: undefined: Node",
    ]
    compiled = [f"k8s.io/kubectl/pkg/cmd/command{n}" for n in range(60)]
    message, _ = build_with_fake_go(monkeypatch, tmp_path, "\n".join([*error, *compiled]))
    assert all(line in message for line in error), message
    assert "k8s.io/kubectl/pkg/cmd/command59" not in message


@pytest.mark.slow
@pytest.mark.usefixtures("empty_cache")
def test_without_the_module_proxy_the_real_go_error_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "empty-module-cache"))
    monkeypatch.setenv("GOPROXY", "off")
    try:
        with pytest.raises(BuildError, match=r"(?s)module proxy \(GOPROXY=off\).*GOMODCACHE"):
            ensure_binaries((ETCD_SERVER,))
    finally:
        # The Go module cache is read-only on purpose; let pytest remove it.
        subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], check=False)


def test_without_go_the_crd_download_says_go_fetches_the_crds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(gotool, "FALLBACK_GO", str(tmp_path / "no-go"))
    with pytest.raises(MissingToolError) as missing:
        prometheus_operator_crd_paths()
    assert "needed to fetch the prometheus-operator CRDs" in str(missing.value)
    assert "control plane binaries" not in str(missing.value)


LOCK_HOLDER = textwrap.dedent(
    """
    import fcntl, sys, time
    handle = open(sys.argv[1], "w")
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(300)
    """
)


def test_waiting_for_another_process_build_is_said_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_cache: Path
) -> None:
    fake_go(tmp_path / "fake-go", failing_build("server/x.go:1: undefined: thing"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'fake-go'}{os.pathsep}{os.environ['PATH']}")
    lock = cache_dir_for(ETCD_SERVER.module) / ".lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    messages: list[str] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            ensure_binaries((ETCD_SERVER,), messages.append)
        except LocalkubeError as error:
            errors.append(error)

    builder = threading.Thread(target=build)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        builder.start()
        wait_for(lambda: bool(messages), timeout=10, what="a message from the waiting build")
        assert messages == [
            f"waiting for another build of these binaries to finish (it holds {lock})"
        ]
        assert builder.is_alive()
    finally:
        holder.kill()
        holder.wait()
    builder.join(timeout=60)
    assert len(errors) == 1  # the lock was free: it built (with the failing fake go)
    assert sum("waiting for another build" in m for m in messages) == 1


INTERRUPTED_BUILD = textwrap.dedent(
    """
    from localkube.build import ETCD_SERVER, ensure_binaries
    ensure_binaries((ETCD_SERVER,), lambda message: None)
    """
)


def test_an_interrupted_build_stops_the_compilers_go_started(
    tmp_path: Path, empty_cache: Path
) -> None:
    pids_file = tmp_path / "pids.json"
    # A go that starts a long "compiler" and waits for it, as `go build` does.
    fake_go(
        tmp_path / "fake-go",
        f'sleep 300 &\necho "[$$, $!]" > {pids_file}\nwait',
    )
    env = {**os.environ, "PATH": f"{tmp_path / 'fake-go'}{os.pathsep}{os.environ['PATH']}"}
    builder = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_BUILD], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(pids_file.exists, timeout=30, what="the fake go build to start")
        wait_for(lambda: pids_file.read_text().endswith("\n"), timeout=5, what="the pids")
        pids: list[int] = json.loads(pids_file.read_text())
        builder.send_signal(signal.SIGINT)  # Ctrl-C reaches only us: go has its own group
        _, stderr = builder.communicate(timeout=30)
        assert "KeyboardInterrupt" in stderr
        wait_for(
            lambda: not any(pid_alive(pid) for pid in pids),
            timeout=10,
            what=f"go and its compiler {pids} to be stopped",
        )
    finally:
        if builder.poll() is None:
            builder.kill()
            builder.wait()
        for pid in json.loads(pids_file.read_text()) if pids_file.exists() else []:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)  # what a failure here left behind


SESSION = textwrap.dedent(
    """
    def test_one(kube):
        pass

    def test_two(kube):
        pass

    def test_three(kubectl_binary):
        pass
    """
)


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_failed_build_is_tried_once_per_session(
    tmp_path: Path, empty_cache: Path, ci: str
) -> None:
    fake_go(tmp_path / "fake-go", failing_build("server/x.go:1: undefined: thing"))
    (tmp_path / "test_session.py").write_text(SESSION)
    env = pytest_env(
        PATH=f"{tmp_path / 'fake-go'}{os.pathsep}{os.environ['PATH']}",
        CREDIT_MONITORING_CACHE=str(empty_cache),
        CI=ci,
    )
    run = run_pytest(tmp_path, env, "test_session.py", timeout=300)
    output = run.stdout + run.stderr
    building = [line for line in run.stderr.splitlines() if line.startswith("localkube: building")]
    # One attempt per module (etcd; the Kubernetes binaries), right after collection.
    assert len(building) == 2, output
    assert len(set(building)) == 2, output
    assert "During handling of the above exception" not in output
    if ci:
        assert run.returncode == 1
        assert "3 errors" in run.stdout, output
    else:
        assert run.returncode == 0
        assert "3 skipped" in run.stdout, output
