"""The request/reply API on NATS: its messages, their JSON Schemas, and the service."""
