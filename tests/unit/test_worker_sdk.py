"""The Python SDK: typed parameters become the input schema and are validated, returns become outputs,
exceptions pick the phase, and sync functions never block the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from aether_es.ports.wire import TaskAssignment, TaskResult, WireParameter
from aether_es.worker import FunctionExecutor, Suspend, TaskError, executor, registered


def assignment(executor_type: str, **inputs: Any) -> TaskAssignment:
    return TaskAssignment.model_validate(
        {
            "taskRunID": "t1",
            "workflowRunID": "r1",
            "taskName": "step",
            "executorType": executor_type,
            "attempt": 1,
            "inputs": [WireParameter(name=k, value=v) for k, v in inputs.items()],
        }
    )


def outputs(result: TaskResult) -> dict[str, Any]:
    return {p.name: p.value for p in result.parameters}


def resize(width: int, image: str, mode: Literal["fit", "fill"] = "fit") -> dict[str, Any]:
    return {"url": f"{image}@{width}/{mode}", "thread": threading.current_thread().name}


class Thumb(BaseModel):
    url: str
    size: int


async def thumb(image: str, size: int = 64) -> Thumb:
    await asyncio.sleep(0)
    return Thumb(url=f"{image}#{size}", size=size)


def test_typed_parameters_become_the_input_schema() -> None:
    schema = FunctionExecutor("resize", resize).input_schema
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"width", "image"}
    assert schema["properties"]["width"]["type"] == "integer"
    assert schema["properties"]["mode"]["enum"] == ["fit", "fill"]
    assert schema["properties"]["mode"]["default"] == "fit"


async def test_sync_function_runs_in_a_thread_with_defaults_applied() -> None:
    result = await FunctionExecutor("resize", resize).execute(assignment("resize", width="200", image="cat.png"))
    assert result.code == 0
    got = outputs(result)
    assert got["url"] == "cat.png@200/fit"  # "200" coerced to int, mode defaulted
    assert got["thread"] != threading.current_thread().name
    assert {p.name: p.type for p in result.parameters}["url"] == "string"


async def test_a_blocking_sync_function_does_not_block_the_loop() -> None:
    release = threading.Event()

    def block() -> dict[str, Any]:
        release.wait(5)
        return {"done": True}

    running = asyncio.ensure_future(FunctionExecutor("block", block).execute(assignment("block")))
    await asyncio.sleep(0.05)  # the loop still turns while the function blocks its thread
    assert not running.done()
    release.set()
    assert outputs(await running) == {"done": True}


async def test_async_function_returning_a_model_gives_its_fields() -> None:
    result = await FunctionExecutor("thumb", thumb).execute(assignment("thumb", image="a.png"))
    assert result.code == 0
    assert outputs(result) == {"url": "a.png#64", "size": 64}
    assert {p.name: p.type for p in result.parameters} == {"url": "string", "size": "int"}


async def test_inputs_that_do_not_fit_fail_naming_the_input() -> None:
    ex = FunctionExecutor("resize", resize)
    bad = await ex.execute(assignment("resize", width="wide", image="cat.png"))
    assert bad.code == 2
    assert bad.message == 'input "width": Input should be a valid integer, unable to parse string as an integer'
    missing = await ex.execute(assignment("resize", width=1))
    assert missing.code == 2 and missing.message == 'input "image": Field required'
    wrong_mode = await ex.execute(assignment("resize", width=1, image="x", mode="crop"))
    assert wrong_mode.code == 2 and wrong_mode.message.startswith('input "mode": Input should be')


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (ValueError("no such image"), 2, "no such image"),
        (TaskError("storage unreachable"), 3, "storage unreachable"),
        (Suspend("approve the resize"), 1, "approve the resize"),
        (RuntimeError(), 2, "RuntimeError"),
    ],
)
async def test_each_exception_kind_picks_the_phase(exc: Exception, code: int, message: str) -> None:
    def raising() -> None:
        raise exc

    async def raising_async() -> None:
        raise exc

    for function in (raising, raising_async):
        result = await FunctionExecutor("x", function).execute(assignment("x"))
        assert (result.code, result.message) == (code, message)


async def test_a_parameter_typed_as_the_assignment_receives_it_and_is_no_input() -> None:
    def attempt(task: TaskAssignment, factor: int = 2) -> dict[str, Any]:
        return {"attempt": task.attempt * factor}

    ex = FunctionExecutor("attempt", attempt)
    assert set(ex.input_schema["properties"]) == {"factor"}
    assert outputs(await ex.execute(assignment("attempt", factor=5))) == {"attempt": 5}


async def test_returning_something_else_is_an_error_and_none_is_no_outputs() -> None:
    wrong = await FunctionExecutor("n", lambda: 42).execute(assignment("n"))
    assert wrong.code == 3 and "returned int" in wrong.message
    empty = await FunctionExecutor("e", lambda: None).execute(assignment("e"))
    assert empty.code == 0 and empty.parameters == []


def test_the_decorator_registers_and_keeps_the_function() -> None:
    @executor("sdk-test-double")
    def double(n: int) -> dict[str, int]:
        return {"n": 2 * n}

    assert double(2) == {"n": 4}
    served = registered()["sdk-test-double"]
    assert isinstance(served, FunctionExecutor) and served.function is double
    with pytest.raises(ValueError, match="already registered"):
        executor("sdk-test-double")(lambda n: n)
    with pytest.raises(TypeError, match="named parameter"):
        FunctionExecutor("bad", lambda *args: None)
