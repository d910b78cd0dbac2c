"""Container images the local node runs that no registry can give us here, built from source.

Each image is a few files on an empty (``scratch``) base, made with buildah and kept as a
docker-archive under ``<cache>/images/``, named by a digest of everything it is made of: an
unchanged image is never built twice, and a cluster's containerd imports the archive
(``containerd.import_images``). Nothing is pulled from a registry.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localkube.build import COREDNS_SERVER, Reporter, binary_path, ensure_binaries
from localkube.errors import BuildError, MissingToolError
from localkube.gotool import go_command, go_env
from localkube.paths import cache_root
from localkube.versions import COREDNS_VERSION, KUBERNETES

# The users the upstream images run as: distroless' nonroot, and busybox' (and distroless')
# nobody. A scratch image has no /etc/passwd, so the group is spelled out too.
NONROOT = "65532:65532"
NOBODY = "65534:65534"
PAUSE_USER = "65535:65535"


@dataclass(frozen=True)
class ImageArchive:
    """An image reference and the docker-archive file that holds it."""

    reference: str
    archive: Path


@dataclass(frozen=True)
class ScratchImage:
    """What goes into a scratch image: files (path in the image -> file here) and its config."""

    reference: str
    files: Mapping[str, Path]
    entrypoint: Sequence[str]
    user: str
    command: Sequence[str] = ()
    ports: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    workdir: str = ""

    def digest(self) -> str:
        """Of the files' contents and the config: what decides whether to build again."""
        hasher = hashlib.sha256()
        config = {
            "reference": self.reference,
            "files": sorted(self.files),
            "entrypoint": list(self.entrypoint),
            "command": list(self.command),
            "user": self.user,
            "ports": list(self.ports),
            "labels": dict(sorted(self.labels.items())),
        }
        if self.workdir:  # only when set: the digests of the images without one stay as they were
            config["workdir"] = self.workdir
        hasher.update(json.dumps(config, sort_keys=True).encode())
        for destination in sorted(self.files):
            hasher.update(self.files[destination].read_bytes())
        return hasher.hexdigest()[:16]


def images_dir() -> Path:
    return cache_root() / "images"


def archive_path(image: ScratchImage) -> Path:
    stem = re.sub(r"[^a-zA-Z0-9_.-]+", "_", image.reference)
    return images_dir() / f"{stem}-{image.digest()}.tar"


def ensure_scratch_image(image: ScratchImage, report: Reporter) -> ImageArchive:
    """The image's archive, built with buildah on a miss."""
    archive = archive_path(image)
    if archive.is_file():
        return ImageArchive(image.reference, archive)
    buildah = shutil.which("buildah")
    if buildah is None:
        raise MissingToolError(
            "buildah is needed to build the local node's images (apt-get install buildah)"
        )
    report(f"building image {image.reference}")
    archive.parent.mkdir(parents=True, exist_ok=True)
    container = _buildah(buildah, "from", "--quiet", "scratch").strip()
    try:
        for destination, source in sorted(image.files.items()):
            _buildah(buildah, "copy", "--chmod", "0755", container, str(source), destination)
        config = [
            f"--entrypoint={json.dumps(list(image.entrypoint))}",
            f"--user={image.user}",
            f"--cmd={json.dumps(list(image.command))}" if image.command else "--cmd=",
        ]
        config += [f"--port={port}" for port in image.ports]
        config += [f"--workingdir={image.workdir}"] if image.workdir else []
        config += [f"--label={key}={value}" for key, value in sorted(image.labels.items())]
        _buildah(buildah, "config", *config, container)
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        # Straight into an archive: the image never lands in podman's own store.
        _buildah(
            buildah,
            "commit",
            "--quiet",
            "--format=docker",
            container,
            f"docker-archive:{partial}:{image.reference}",
        )
        partial.rename(archive)
    finally:
        _buildah(buildah, "rm", container, check=False)
    for stale in archive.parent.glob(f"{archive.name.rsplit('-', 1)[0]}-*.tar"):
        if stale != archive:
            stale.unlink(missing_ok=True)
    return ImageArchive(image.reference, archive)


def _buildah(buildah: str, *arguments: str, check: bool = True) -> str:
    completed = subprocess.run(
        [buildah, *arguments], capture_output=True, text=True, timeout=600, check=False
    )
    if check and completed.returncode != 0:
        raise BuildError(f"buildah {arguments[0]} failed: {completed.stderr.strip()}")
    return completed.stdout


# --- the images every node needs --------------------------------------------------------------


def pause_image(report: Reporter) -> ImageArchive:
    """The pod sandbox image: Kubernetes' own pause.c, compiled statically here."""
    source = _kubernetes_source() / "build" / "pause" / "linux" / "pause.c"
    tag = pause_version()
    with tempfile.TemporaryDirectory(prefix="localkube-pause-") as scratch:
        binary = Path(scratch) / "pause"
        _compile_pause(source, binary, tag)
        image = ScratchImage(
            reference=f"localhost/localkube/pause:{tag}",
            files={"/pause": binary},
            entrypoint=("/pause",),
            user=PAUSE_USER,
        )
        return ensure_scratch_image(image, report)


def pause_version() -> str:
    """The pause TAG of the pinned Kubernetes source (its build/pause/Makefile)."""
    makefile = (_kubernetes_source() / "build" / "pause" / "Makefile").read_text()
    found = re.search(r"^TAG\s*\?=\s*(\S+)", makefile, flags=re.MULTILINE)
    if found is None:
        raise BuildError("cannot find the pause TAG in Kubernetes' build/pause/Makefile")
    return found.group(1)


def _compile_pause(source: Path, binary: Path, tag: str) -> None:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise MissingToolError("a C compiler (gcc) is needed to build the pause image")
    completed = subprocess.run(
        [compiler, "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-localkube",
         "-o", str(binary), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise BuildError(
            f"compiling {source.name} failed (a static build needs libc6-dev):\n"
            f"{completed.stderr.strip()}"
        )


def _kubernetes_source() -> Path:
    """The pinned k8s.io/kubernetes module in Go's module cache (downloaded if missing)."""
    completed = subprocess.run(
        [go_command("to find Kubernetes' pause.c"), "mod", "download", "-json",
         f"{KUBERNETES.upstream}@{KUBERNETES.version}"],
        capture_output=True,
        text=True,
        env=go_env(),
        timeout=600,
        check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise BuildError(f"go mod download {KUBERNETES.upstream} failed: {completed.stderr}")
    return Path(json.loads(completed.stdout)["Dir"])


def coredns_image(report: Reporter) -> ImageArchive:
    """CoreDNS, built from its Go module, as the cluster DNS' image (runs as nobody)."""
    ensure_binaries((COREDNS_SERVER,), report)
    image = ScratchImage(
        reference=f"localhost/localkube/coredns:{COREDNS_VERSION}",
        files={"/coredns": binary_path(COREDNS_SERVER)},
        entrypoint=("/coredns",),
        user=NONROOT,
    )
    return ensure_scratch_image(image, report)


def podman_image_archive(reference: str, report: Reporter) -> ImageArchive:
    """An image from podman's store (``make images``, the base image) as an archive a node's
    containerd imports, saved once per image ID."""
    podman = shutil.which("podman")
    if podman is None:
        raise MissingToolError("podman is needed to hand its images to the local node")
    inspected = subprocess.run(
        [podman, "image", "inspect", "--format", "{{.Id}}", reference],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if inspected.returncode != 0:
        raise BuildError(f"podman has no image {reference}: {inspected.stderr.strip()}")
    stem = re.sub(r"[^a-zA-Z0-9_.-]+", "_", reference)
    archive = images_dir() / "podman" / f"{stem}-{inspected.stdout.strip()[:16]}.tar"
    if not archive.is_file():
        report(f"saving {reference} for the node")
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(".partial")
        saved = subprocess.run(
            [podman, "save", "--quiet", "--format=docker-archive", f"--output={partial}",
             reference],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )  # fmt: skip
        if saved.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BuildError(f"podman save {reference} failed: {saved.stderr.strip()}")
        partial.rename(archive)
        prune_archives(archive.parent, _repository(reference), keep=ARCHIVES_KEPT)
    return ImageArchive(reference, archive)


# Archives kept per repository: a tag per content hash makes a new archive (hundreds of MB) at
# every change, so the oldest go, as hack/images/build.sh drops all but its newest 3 tags.
ARCHIVES_KEPT = 3


def _repository(reference: str) -> str:
    name, _, tag = reference.rpartition(":")
    return name if name and "/" not in tag else reference


def prune_archives(folder: Path, repository: str, *, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest archives of ``repository`` in ``folder`` (those of
    other repositories stay); the ones deleted."""
    prefix = re.sub(r"[^a-zA-Z0-9_.-]+", "_", repository) + "_"
    archives = [
        path
        for path in folder.glob(f"{glob.escape(prefix)}*.tar")
        # `a_b_` must not take `a_b_c_<tag>`: what follows the prefix is one tag-ID stem.
        if "_" not in path.name[len(prefix) :]
    ]
    archives.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in archives[keep:]:
        stale.unlink(missing_ok=True)
    return archives[keep:]
