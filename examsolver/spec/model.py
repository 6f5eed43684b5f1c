"""The declared schema of a problem spec, and validation with located errors.

Every mistake in a file is reported at once, each as `file:line:col: message`,
as mkdocs does with its config.  Numbers and tensors are parsed by our
whitelist parser (spec/expr.py) into exact values during validation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError,
                      WithJsonSchema, create_model)
from pydantic_core import PydanticCustomError

from examsolver.errors import ExprError, SpecError
from examsolver.spec.expr import parse_nested, parse_number
from examsolver.spec.load import Document

_NUMBER_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string"}],
                  "description": "exact number or expression: 1.3, 1/3, ln(2), sqrt(2), e, pi, 2**-3"}
_TENSOR_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "array"}],
                  "description": "number, nested list of numbers, or an expression such as '[1, 2]*ln(2)'"}


def _exact_number(value):
    try:
        return parse_number(value)
    except ExprError as err:
        raise PydanticCustomError("number", str(err)) from None


def _exact_tensor(value):
    import numpy as np

    try:
        nested = parse_nested(value)
    except ExprError as err:
        raise PydanticCustomError("tensor", str(err)) from None
    array = np.empty(_shape(nested), dtype=object)
    _fill(array, nested, ())
    return array


def _shape(nested) -> tuple:
    return (len(nested),) + _shape(nested[0]) if isinstance(nested, list) else ()


def _fill(array, nested, index):
    if isinstance(nested, list):
        for i, item in enumerate(nested):
            _fill(array, item, index + (i,))
    else:
        array[index] = nested


Number = Annotated[Any, BeforeValidator(_exact_number), WithJsonSchema(_NUMBER_SCHEMA)]
Tensor = Annotated[Any, BeforeValidator(_exact_tensor), WithJsonSchema(_TENSOR_SCHEMA)]
PositiveInt = Annotated[int, Field(ge=1, le=10_000)]
Text = Annotated[str, Field(max_length=20_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True)


class Localized(Strict):
    hr: Text | None = None
    en: Text | None = None


# ----- layers and losses, from the registries -----------------------------------
def _tagged_union(registry: dict, what: str):
    """`relu` or `{conv1d: {...}}` → the registered params model, keyed by kind."""

    def normalize(value):
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, dict) and len(value) == 1:
            (kind, params), = value.items()
            return {kind: {} if params is None else params}
        return value

    def kind_of(value):
        if isinstance(value, dict) and len(value) == 1:
            kind = next(iter(value))
            return kind if kind in registry else None
        return None

    members = []
    for kind, entry in registry.items():
        wrapper = create_model(f"{kind}_{what}", __base__=Strict, **{kind: (entry.Params, ...)})
        members.append(Annotated[wrapper, Tag(kind)])
    expected = ", ".join(registry)
    union = Annotated[Union[tuple(members)], Discriminator(
        kind_of, custom_error_type=f"unknown_{what}",
        custom_error_message=f"unknown {what} (expected one of: {expected})")]
    return Annotated[union, BeforeValidator(normalize)]


def _registries():
    from examsolver.engine.ops import LAYERS, LOSSES

    return LAYERS, LOSSES


class Example(Strict):
    x: Tensor
    y: Tensor | None = None


class Gradient(Strict):
    wrt: list[str] = Field(min_length=1, max_length=100)


class TrainStep(Strict):
    lr: Number = Field(description="learning rate η")
    reduction: Literal["mean", "sum"] = "mean"


class GradientTask(Strict):
    gradient: Gradient


class TrainTask(Strict):
    train_step: TrainStep


class Conventions(Strict):
    batchnorm_backward: Literal["full", "constants"] = "full"
    convolution: Literal["cross_correlation", "convolution"] = "cross_correlation"
    relu_grad_at_zero: Number = 0
    maxpool_ties: Literal["first", "split"] = "first"


def _task_kind(value):
    if value == "forward" or value == {"forward": None}:
        return "forward"
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value)) if next(iter(value)) in ("gradient", "train_step") else None
    return None


Task = Annotated[
    Union[Annotated[Literal["forward"], Tag("forward")], Annotated[GradientTask, Tag("gradient")],
          Annotated[TrainTask, Tag("train_step")]],
    Discriminator(_task_kind, custom_error_type="unknown_task",
                  custom_error_message="unknown task (expected forward, gradient or train_step)")]


def network_spec_model():
    layers, losses = _registries()
    Layer = _tagged_union(layers, "layer")
    Loss = _tagged_union(losses, "loss")
    return create_model(
        "NetworkSpec", __base__=Strict,
        id=(Text, ...),
        kind=(Literal["network"], "network"),
        source=(Text, ""),
        title=(Localized, Localized()),
        statement=(Localized | None, None),
        model=(list[Layer], Field(min_length=1, max_length=200)),
        loss=(Loss | None, None),
        data=(Example | list[Example], ...),
        tasks=(list[Task], Field(default_factory=lambda: ["forward"], max_length=20)),
        conventions=(Conventions, Conventions()),
        answers=(dict[str, Any], Field(default_factory=dict)),
    )


# ----- validation ------------------------------------------------------------
def validate(doc: Document, model_cls) -> Any:
    """The validated spec, or SpecError with every problem located."""
    try:
        return model_cls.model_validate(doc.data)
    except ValidationError as err:
        problems = [doc.problem(_yaml_path(doc.data, e["loc"]), _message(e)) for e in err.errors()]
        raise SpecError(_dedupe(problems)) from None


def _yaml_path(data, loc: tuple) -> tuple:
    """pydantic's loc includes union tags; keep only the parts present in the YAML."""
    path, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
    return tuple(path)


def _message(error: dict) -> str:
    kind, loc = error["type"], error["loc"]
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
    if kind == "missing":
        return f"missing field {field!r}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    text = error["msg"]
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
    return f"{field}: {text}" if field != "value" and kind not in ("unknown_layer", "unknown_loss") else text


def _dedupe(problems: list) -> list:
    seen, out = set(), []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out
