"""The engine's ports: one `typing.Protocol` per pluggable concern."""
