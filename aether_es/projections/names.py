"""Task run names as people read them: a loop iteration shows its index, as in `score[2]`."""

from __future__ import annotations


def display_name(task_name: str, scope: str) -> str:
    """`one[12]` for an iteration of a loop (scope `main.loop[12]/`), the task's name otherwise."""
    if ".loop[" in scope:
        return f"{task_name}[{scope.rsplit('.loop[', 1)[1].rstrip('/').rstrip(']')}]"
    return task_name
