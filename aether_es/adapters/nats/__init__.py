"""NATS JetStream adapters: server (embedded nats-server), connection, layout (names and configs),
event_store, broker (engine and worker sides), deadlines (KV deadlines and the timeout watcher), plus the
helpers retry (transient errors, idempotent publish) and kv_feed (reading and following a KV bucket).
"""
