"""Every `aether-es` command: its name, the module that defines it, and its one-line help.

`main` imports only the module of the command asked for, so a command starts without paying for all the
others (pydantic models, the NATS client, the engine); `--help` imports none.
"""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("aether_es.cli.validate_cmd", "check a Workflow or CronWorkflow document"),
    "run": ("aether_es.cli.run_cmd", "run a workflow end to end on an embedded or given NATS"),
    "serve": ("aether_es.cli.serve_cmd", "run the engine, its API and event feed until stopped"),
    "submit": ("aether_es.cli.runs_cmd", "submit a workflow to a running system"),
    "get": ("aether_es.cli.runs_cmd", "show a run and its task runs (now, or as it was at a point)"),
    "list": ("aether_es.cli.runs_cmd", "list runs, newest first"),
    "watch": ("aether_es.cli.runs_cmd", "follow a run's tasks live until it ends"),
    "resume": ("aether_es.cli.runs_cmd", "resume a suspended task run"),
    "cancel": ("aether_es.cli.runs_cmd", "cancel a run"),
    "retry": ("aether_es.cli.runs_cmd", "run a finished run's failed steps again, keeping what succeeded"),
    "events": ("aether_es.cli.events_cmd", "read (and follow) the event feed of a running system"),
    "history": ("aether_es.cli.history_cmd", "a run's events, exported as JSON lines or imported from them"),
    "replay": ("aether_es.cli.replay_cmd", "rebuild run views from the event log, and verify them"),
    "audit": ("aether_es.cli.audit_cmd", "every command issued: who, when, on what, and why"),
    "retention": ("aether_es.cli.retention_cmd", "archive and remove finished runs by age or count (audited)"),
    "conformance": ("aether_es.cli.conformance_cmd", "run a conformance corpus (workflows/ + assertions/)"),
    "cron": ("aether_es.cli.cron_cmd", "manage CronWorkflows of a running system"),
    "artifacts": ("aether_es.cli.artifacts_cmd", "list a run's stored artifacts, or download one"),
    "logs": ("aether_es.cli.logs_cmd", "print what a run's tasks print, line by line (and follow it)"),
    "graph": ("aether_es.cli.graph_cmd", "draw a workflow or a run as mermaid, dot or svg"),
    "workers": ("aether_es.cli.workers_cmd", "list the live workers of a running system"),
    "engines": ("aether_es.cli.engines_cmd", "list the live engines of a running system and what each holds"),
    "worker": ("aether_es.cli.worker_cmd", "serve executor types to a running system until stopped"),
    "bench": ("bench.cli", "benchmark the engine against a raw nats-py floor"),
}


def summary(name: str) -> str:
    """The command's one-line help, for its module's parser."""
    return COMMANDS[name][1]
