"""`aether-es bench`: throughput, latency, memory and replay benchmarks against a raw nats-py floor."""
