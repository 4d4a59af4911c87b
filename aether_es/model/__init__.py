"""The aether/v1 document model: documents, defaults, validation, loading and durations, one module each."""
