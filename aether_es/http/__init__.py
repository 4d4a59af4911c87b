"""The web UI of a served system (`aether-es serve --http`): pages, JSON endpoints and live streams over HTTP.

It reads and steers through the same request/reply API as the CLI and `aether_es.Client`, follows runs from
their history as `watch` does, and hears the event feed for the runs list (docs/ui.md).
"""
