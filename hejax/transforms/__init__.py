"""Operator transforms: how each IR op becomes HE primitives.

A transform is a named set of rules ``rule(builder, node, *inputs) ->
TensorLayout``; rules are registered with :func:`register` and looked up by
:func:`rule_for`. Ops a transform does not define fall back to the
``"default"`` rules (bias, residual add, ReLU boundaries, dense, …). Adding a
transform is adding one module that registers its rules and importing it
here.
"""

from __future__ import annotations

from collections.abc import Callable

from hejax.errors import InvalidInputError, UnsupportedModelError

Rule = Callable[..., object]

_RULES: dict[str, dict[str, Rule]] = {"default": {}}
_DOCS: dict[str, str] = {}
#: Transforms that compile the whole graph themselves (no per-op rules).
_PROGRAMS: dict[str, Callable[..., object]] = {}


def register(
    op: str, transform: str = "default", doc: str = ""
) -> Callable[[Rule], Rule]:
    """Register `rule` for IR op `op` under the transform named `transform`."""

    def wrap(rule: Rule) -> Rule:
        _RULES.setdefault(transform, {})[op] = rule
        if doc:
            _DOCS[transform] = doc
        return rule

    return wrap


def register_program(name: str, compiler: Callable[..., object], doc: str = ""):
    """Register a transform that compiles a whole graph itself.

    ``compiler(graph, backend, options)`` returns the program.
    """
    _PROGRAMS[name] = compiler
    _DOCS[name] = doc


def program_compiler(name: str) -> Callable[..., object] | None:
    """The whole-graph compiler of transform `name`, or None for rule sets."""
    return _PROGRAMS.get(name)


def names() -> list[str]:
    """Names of the registered transforms (``"default"`` excluded)."""
    return sorted({t for t in _RULES if t != "default"} | set(_PROGRAMS))


def describe(name: str) -> str:
    """One-line description of a transform."""
    return _DOCS.get(name, "")


def rule_for(op: str, transform: str) -> Rule:
    """The rule for `op` under `transform`, or the default rule.

    Raises:
        InvalidInputError: for an unknown transform.
        UnsupportedModelError: if no rule lowers `op`.
    """
    if transform not in _RULES or transform == "default":
        raise InvalidInputError(
            f"unknown transform {transform!r}; transforms: {', '.join(names())}"
        )
    rule = _RULES[transform].get(op) or _RULES["default"].get(op)
    if rule is None:
        raise UnsupportedModelError(f"transform {transform!r} cannot lower {op!r}")
    return rule


from hejax.transforms import coef, dense, elementwise, shift_conv  # noqa: E402, F401
