"""Artifact repositories: local filesystem, HTTP, and the NATS Object Store."""
