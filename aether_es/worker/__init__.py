"""Workers: the pool that runs executors, and the SDK that turns Python functions into executors."""

from aether_es.worker.sdk import FunctionExecutor, Suspend, TaskError, executor, registered, run

__all__ = ["FunctionExecutor", "Suspend", "TaskError", "executor", "registered", "run"]
