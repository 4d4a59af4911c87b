"""Binding parameters: valueFrom resolution, `{{...}}` interpolation, and the call-site/declaration binder.

Secret references are never resolved here. A parameter bound from `secretKeyRef` keeps the reference and no
value; the dispatcher resolves it into the assignment only, so a secret value never enters an event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from aether_es.model.documents import Artifact, Parameter, ValueFrom
from aether_es.model.gofmt import go_sprint
from aether_es.ports.evaluator import Evaluator, ExpressionError

LEGACY_PREFIX = "workflow.arguments.parameters."
PARAMS_PREFIX = "workflow.parameters."

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_SINGLE = re.compile(r"\{\{([^{}]*)\}\}")

Warn = Callable[[str, str], None]


class BindingError(Exception):
    """A valueFrom could not be resolved; the message names the key or the cause."""


class SecretRef(Exception):
    """Raised internally when a value must come from a secret at dispatch time."""


def placeholder_keys(text: str) -> list[str]:
    """The trimmed keys of the `{{key}}` placeholders in a text, in order."""
    return [match.group(1).strip() for match in _PLACEHOLDER.finditer(text)]


def single_placeholder(text: str) -> str | None:
    """The trimmed key when the whole string is exactly one `{{key}}` placeholder."""
    match = _SINGLE.fullmatch(text)
    return match.group(1).strip() if match is not None else None


def interpolate(text: str, env: Mapping[str, Any]) -> Any:
    """Aether's interpolation: a whole-string placeholder keeps the value's type; otherwise text substitution.

    Unknown keys and unclosed placeholders stay as they are.
    """
    if "{{" not in text:
        return text
    key = single_placeholder(text)
    if key is not None:
        return env.get(key, text)

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        return go_sprint(env[key]) if key in env else match.group(0)

    return _PLACEHOLDER.sub(substitute, text)


def lookup(env: Mapping[str, Any], key: str) -> Any:
    if key not in env:
        raise BindingError(f'key "{key}" not found in eval env')
    return env[key]


def resolve_value_from(
    value_from: ValueFrom, env: Mapping[str, Any], evaluator: Evaluator | None, secrets: bool
) -> Any:
    """The value a valueFrom names, by Aether's priority: path, parameter, expression, secretKeyRef.

    Raises SecretRef when the value is a secret to be resolved at dispatch, BindingError on failure.
    """
    if value_from.path:
        return lookup(env, value_from.path)
    if value_from.parameter:
        key = value_from.parameter
        if key.startswith(LEGACY_PREFIX):
            key = PARAMS_PREFIX + key[len(LEGACY_PREFIX) :]
        return lookup(env, key)
    if value_from.expression:
        if evaluator is None:
            raise BindingError("valueFrom.expression requires an expression evaluator but none is configured")
        expression = interpolate(value_from.expression, env)
        try:
            return evaluator.evaluate(str(expression) if not isinstance(expression, str) else expression, env)
        except ExpressionError as exc:
            raise BindingError(str(exc)) from exc
    if value_from.secret_key_ref is not None:
        if not secrets:
            raise BindingError("secretKeyRef requires a secret provider but none is configured")
        raise SecretRef()
    raise BindingError("valueFrom names nothing to resolve")


def _declared(decl: Parameter) -> Parameter:
    """The declaration's descriptive fields, without value or valueFrom."""
    return Parameter(name=decl.name, type=decl.type, default=decl.default, description=decl.description, enum=decl.enum)


def _from(
    target: Parameter,
    value_from: ValueFrom,
    fallback: Any,
    env: Mapping[str, Any],
    evaluator: Evaluator | None,
    secrets: bool,
    warn: Warn,
) -> Parameter:
    try:
        target.value = resolve_value_from(value_from, env, evaluator, secrets)
    except SecretRef:
        target.value_from = ValueFrom(secret_key_ref=value_from.secret_key_ref)
    except BindingError as exc:
        warn(f"bind.resolveValueFrom.{target.name}", str(exc))
        target.value = fallback
    return target


def bind(
    decls: list[Parameter],
    args: list[Parameter],
    env: Mapping[str, Any],
    evaluator: Evaluator | None,
    secrets: bool,
    warn: Warn,
) -> list[Parameter]:
    """Declared inputs in order, each from its argument or its own value/valueFrom/default, then the
    undeclared arguments passed through in argument order. Argument values are never interpolated."""
    by_name = {arg.name: arg for arg in args}
    declared_names = set()
    out: list[Parameter] = []
    for decl in decls:
        declared_names.add(decl.name)
        param = _declared(decl)
        arg = by_name.get(decl.name)
        if arg is not None and arg.value is not None:
            param.value = arg.value
        elif arg is not None and arg.value_from is not None and arg.value_from.is_set():
            param = _from(param, arg.value_from, decl.default, env, evaluator, secrets, warn)
        elif decl.value is not None:
            param.value = decl.value
        elif decl.value_from is not None and decl.value_from.is_set():
            param = _from(param, decl.value_from, decl.default, env, evaluator, secrets, warn)
        else:
            param.value = decl.default
        out.append(param)
    for arg in args:
        if arg.name in declared_names:
            continue
        param = Parameter(name=arg.name, type=arg.type)
        if arg.value is not None:
            param.value = arg.value
        elif arg.value_from is not None and arg.value_from.is_set():
            param = _from(param, arg.value_from, None, env, evaluator, secrets, warn)
        out.append(param)
    return out


def bind_artifacts(decls: list[Artifact], args: list[Artifact], env: Mapping[str, Any], warn: Warn) -> list[Artifact]:
    """Declared input artifacts (a call-site artifact of the same name wins), then undeclared ones.

    `from` names an upstream output artifact (`tasks.<t>.outputs.artifacts.<a>`, braces optional) whose
    source, archive and digest are used; otherwise the artifact's own are. Where it lands (`path`) is the
    call site's, else the declaration's.
    """
    declared = {decl.name: decl for decl in decls}
    by_name = {arg.name: arg for arg in args}
    chosen = [by_name.pop(decl.name, decl) for decl in decls] + list(by_name.values())
    bound: list[Artifact] = []
    for artifact in chosen:
        stored = artifact
        if artifact.from_:
            key = single_placeholder(artifact.from_) or artifact.from_.strip()
            found = env.get(key)
            if isinstance(found, dict) and found.get("source"):
                stored = Artifact.model_validate(found, strict=False)
            else:
                warn(
                    f"bind.resolveArtifact.{artifact.name}",
                    f'artifact "{artifact.name}": {key!r} names no stored artifact',
                )
        decl = declared.get(artifact.name)
        bound.append(
            Artifact(
                name=artifact.name,
                source=stored.source,
                archive=stored.archive,
                digest=stored.digest,
                path=artifact.path or (decl.path if decl is not None else ""),
            )
        )
    return bound


def merge_parameters(base: list[Parameter] | None, extra: list[Parameter]) -> list[Parameter]:
    """Same name replaces in place, new names are appended (suspend outputs, resume payloads)."""
    merged = [p.model_copy() for p in base or ()]
    index = {p.name: i for i, p in enumerate(merged)}
    for param in extra:
        if param.name in index:
            merged[index[param.name]] = param
        else:
            index[param.name] = len(merged)
            merged.append(param)
    return merged
