"""Shared by the aarch64 LiteRT oracle tests: the emulated root, built once per machine and
cached outside the repository (``converters.litert_arm64``).  Under ``CI=true`` a root that
cannot be built fails the test run; elsewhere the tests skip and say why."""

import os

import pytest

from wavenet_edge.errors import WaveNetEdgeError


def arm64_root_or_skip():
    from converters.litert_arm64 import ensure_arm64_root
    try:
        return ensure_arm64_root(progress=True)
    except WaveNetEdgeError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: the aarch64 LiteRT oracle is required: {e}")
        pytest.skip(f"no aarch64 LiteRT oracle on this machine: {e}")
