"""Errors that tell a person what is missing and how to get it."""

from __future__ import annotations


class LocalkubeError(RuntimeError):
    """Base class of every error this package raises on purpose."""


class MissingToolError(LocalkubeError):
    """A tool needed to build or run the control plane is not available."""


class BuildError(LocalkubeError):
    """A `go build` failed; the message carries the end of its output."""


class ClusterStartError(LocalkubeError):
    """A control-plane component did not come up; the message carries the end of its log."""
