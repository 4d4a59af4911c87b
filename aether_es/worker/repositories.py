"""The artifact repositories every worker has, and the command line reads from: the system's NATS Object
Store bucket (the default for outputs without a source), a local folder, and HTTP."""

from __future__ import annotations

from pathlib import Path

from nats.js import JetStreamContext

from aether_es.adapters.artifacts.http import HttpArtifactRepository
from aether_es.adapters.artifacts.local import LocalArtifactRepository
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.object_store import NatsObjectStoreRepository
from aether_es.ports.artifacts import ArtifactRepository

LOCAL_ARTIFACTS = "artifacts"
"""The local repository's folder under a state directory."""


def default_repositories(js: JetStreamContext, layout: Layout, state_dir: Path) -> list[ArtifactRepository]:
    """The NATS bucket first (the default), files under `<state_dir>/artifacts`, and HTTP."""
    return [
        NatsObjectStoreRepository(js, layout.artifacts_bucket, layout.artifacts_object_store_config()),
        LocalArtifactRepository(state_dir / LOCAL_ARTIFACTS),
        HttpArtifactRepository(),
    ]
