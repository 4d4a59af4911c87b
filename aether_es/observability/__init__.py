"""What a running system tells its operators: Prometheus metrics, task logs and (optionally) traces."""
