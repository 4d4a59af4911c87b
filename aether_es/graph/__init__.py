"""Pictures of workflows: a left-to-right layout of a document's DAGs and loops, and its renderings.

`layout.layout_workflow` is pure (no I/O) and is the one layout behind every picture: the JSON the web UI
draws (`Graph.to_json`) and the svg of `aether-es graph` share its positions.
"""
