"""The declared schema of a problem spec, and validation with located errors.

Every mistake in a file is reported at once, each as `file:line:col: message`,
as mkdocs does with its config.  Numbers and tensors are parsed by our
whitelist parser (spec/expr.py) into exact values during validation.
"""

from __future__ import annotations

from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, PrivateAttr, Tag,
                      ValidationError, WithJsonSchema, create_model, model_validator)
from pydantic.json_schema import SkipJsonSchema
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
    if array.ndim:
        array[...] = nested         # rectangular (parse_nested checked it): numpy copies the entries
    else:
        array[()] = nested
    return array


def _shape(nested) -> tuple:
    return (len(nested),) + _shape(nested[0]) if isinstance(nested, list) else ()


Number = Annotated[Any, BeforeValidator(_exact_number), WithJsonSchema(_NUMBER_SCHEMA)]
Tensor = Annotated[Any, BeforeValidator(_exact_tensor), WithJsonSchema(_TENSOR_SCHEMA)]
PositiveInt = Annotated[int, Field(ge=1, le=10_000)]
Text = Annotated[str, Field(max_length=20_000)]


class Strict(BaseModel):
    # defer_build: a model's validator is built on first use, so a run pays only for the
    # layer kinds its spec uses (building all of them costs ~0.2 s at every start).
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True,
                              defer_build=True)


def _inline_math(text: str) -> str:
    """Text whose `$…$` formulas are in the inline-math allow-list: refused here, where they are written."""
    from examsolver.render.inline import InlineMathError, check_text

    try:
        check_text(text)
    except InlineMathError as err:
        raise PydanticCustomError("inline_math", str(err)) from None
    return text


class Localized(Strict):
    """Text a document shows (a title, a statement, a note): `$…$` in it is inline math."""

    hr: Annotated[Text, AfterValidator(_inline_math)] | None = None
    en: Annotated[Text, AfterValidator(_inline_math)] | None = None


Line = Annotated[str, Field(max_length=300)]


class TitlePage(Strict):
    """`document:` — what a title page says beyond the problem: the same text in every language, or
    per language ({hr: …, en: …}).  Command-line options override it; a booklet takes each field
    from the first spec (in the order given) that has it."""

    course: Line | Localized | None = None
    author: Line | Localized | None = None
    date: Line | Localized | None = None


TITLE_PAGE = (TitlePage, Field(default_factory=TitlePage))     # the `document:` field of every problem kind


# ----- layers and losses, from the registries -----------------------------------
def _normalize_entry(value):
    """`relu` → {relu: {}}; `{conv1d: null}` → {conv1d: {}}."""
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, dict) and len(value) == 1:
        (kind, params), = value.items()
        return {kind: {} if params is None else params}
    return value


def validate_entries(doc: Document, entries, registry: dict, loc: tuple, what: str) -> tuple[list, list]:
    """Validate `kind: params` entries against the registry: ([(kind, params)], [problems]).

    Each entry is checked only against its own kind's schema, so a run builds the
    validators of the kinds it uses and no others.
    """
    out, problems = [], []
    expected = ", ".join(registry)
    for i, raw in enumerate(entries if isinstance(entries, list) else [entries]):
        here = loc + ((i,) if isinstance(entries, list) else ())
        entry = _normalize_entry(raw)
        if not isinstance(entry, dict) or len(entry) != 1:
            problems.append(doc.problem(here, f"expected a {what} name or `kind: {{parameters}}`"))
            continue
        (kind, params), = entry.items()
        if kind not in registry:
            problems.append(doc.problem(here, f"unknown {what} {kind!r} (expected one of: {expected})"))
            continue
        try:
            out.append((kind, validate(doc, registry[kind].Params, params, here + (kind,))))
        except SpecError as err:
            problems += err.problems
    return out, problems


def bare_names_allowed(names):
    """json_schema_extra for an entry field that also takes a bare kind name (`loss: contrastive`)."""

    def extend(schema: dict) -> None:
        original = dict(schema)
        schema.clear()
        schema["anyOf"] = [original, {"enum": list(names)}]

    return extend


def _tagged_union(registry: dict, what: str):
    """The JSON-Schema view of `kind: params` entries (for `examsolver schema` only)."""

    def kind_of(value):
        if isinstance(value, dict) and len(value) == 1:
            kind = next(iter(value))
            return kind if kind in registry else None
        return None

    members = []
    for kind, entry in registry.items():
        wrapper = create_model(f"{kind}_{what}", __base__=Strict, **{kind: (entry.Params, ...)})
        members.append(Annotated[wrapper, Tag(kind)])
    bare = tuple(kind for kind, entry in registry.items() if _accepts_empty(entry.Params))
    if bare:   # the shorthand `- relu`; in validation strings are normalized to {kind: {}} first
        members.append(Annotated[Literal[bare], Tag("bare")])
    expected = ", ".join(registry)
    union = Annotated[Union[tuple(members)], Discriminator(
        kind_of, custom_error_type=f"unknown_{what}",
        custom_error_message=f"unknown {what} (expected one of: {expected})")]
    return Annotated[union, BeforeValidator(_normalize_entry)]


def _accepts_empty(params_model) -> bool:
    try:
        params_model.model_validate({})
    except ValidationError:
        return False
    return True


def _registries():
    from examsolver.engine.ops import LAYERS, LOSSES

    return LAYERS, LOSSES


class SparseEntry(Strict):
    at: list[Annotated[int, Field(ge=0, le=100_000)]] = Field(min_length=1, max_length=4)
    value: Number = 1


class SparseTensor(Strict):
    """Zeros except the listed entries; `shape: infer` leaves the shape to the model (engine/shapes.py)."""

    shape: list[PositiveInt] | Literal["infer"] = "infer"
    entries: list[SparseEntry] = Field(default_factory=list, max_length=10_000)


Input = Annotated[
    Union[Annotated[Tensor, Tag("dense")], Annotated[SparseTensor, Tag("sparse")]],
    Discriminator(lambda v: "sparse" if isinstance(v, (dict, SparseTensor)) else "dense")]


class Example(Strict):
    x: Input
    y: Tensor | None = None


class Gradient(Strict):
    wrt: list[str] = Field(min_length=1, max_length=100,
                           description="parameters (fc1.W), the input x, or any layer by its name")
    method: Literal["per_example", "batch"] = Field(
        "per_example", description="one backward pass per example's loss (as the 2022 slides), or of the batch loss")
    reduction: Literal["mean", "sum"] = "mean"
    upstream: dict[str, Tensor] | None = Field(
        None, description="given upstream gradients ∂L/∂(node) by node name, instead of a loss")


class TrainStep(Strict):
    lr: Number = Field(description="learning rate η")
    reduction: Literal["mean", "sum"] = "mean"
    method: Literal["per_example", "batch"] = Field(
        "per_example", description="backward per example then reduce (as the 2022 slides), or of the batch loss at once")


class GradientTask(Strict):
    gradient: Gradient


class TrainStepTask(Strict):
    train_step: TrainStep


class TrainTask(Strict):
    """`train: {optimizer: {adam: {lr: 1/10}}, steps: 2, …}`: validated by the network kind against the
    optimizers' schema (engine/optim), which is imported only when a spec trains."""

    train: dict[str, Any]


class InferInputSize(Strict):
    also_padding: list[Annotated[int, Field(ge=0, le=100)]] = Field(
        default_factory=list, max_length=5, description="other zero paddings of every conv2d to compare")


class InferSizeTask(Strict):
    infer_input_size: InferInputSize = Field(default_factory=InferInputSize)

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value):
        """`- infer_input_size` and `- infer_input_size:` mean the task with its defaults."""
        if value == "infer_input_size" or value == {"infer_input_size": None}:
            return {"infer_input_size": {}}
        return value


MISTAKE_HOOKS = ("relu_mask_forgotten", "global_pool_sum", "updated_weights_in_backward")


class Conventions(Strict):
    batchnorm_backward: Literal["full", "constants"] = "full"
    convolution: Literal["cross_correlation", "convolution"] = "cross_correlation"
    relu_grad_at_zero: Number = 0
    maxpool_ties: Literal["first", "split"] = "first"
    flatten: Literal["channel_first", "channel_last"] = "channel_first"
    dropout: Literal["inverted", "plain"] = "inverted"     # PyTorch scales in training; plain: at inference
    weights: Literal["out_in", "in_out"] = "out_in"       # a linear layer's W: PyTorch's z = Wx + b, or z = Wᵀx + b
    # Hidden from the JSON Schema: deliberate mistakes the engine can make on request, so that
    # `examsolver check`/`verify` can tell which mistake reproduces a wrong answer (see diagnose/).
    # Ops consult it by name; the names are listed in MISTAKE_HOOKS.
    mistakes: SkipJsonSchema[list[Literal[MISTAKE_HOOKS]]] = Field(default_factory=list, max_length=10)


Data = Annotated[
    Union[Annotated[Example, Tag("one")], Annotated[list[Example], Tag("batch")]],
    Discriminator(lambda v: "batch" if isinstance(v, list) else "one")]


def _task_kind(value):
    if value == "forward" or value == {"forward": None}:
        return "forward"
    if value == "infer_input_size":
        return "infer_input_size"
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value)) if next(iter(value)) in ("gradient", "train_step", "train", "infer_input_size") else None
    return None


Task = Annotated[
    Union[Annotated[Literal["forward"], Tag("forward")], Annotated[GradientTask, Tag("gradient")],
          Annotated[TrainStepTask, Tag("train_step")], Annotated[TrainTask, Tag("train")],
          Annotated[InferSizeTask, Tag("infer_input_size")]],
    Discriminator(_task_kind, custom_error_type="unknown_task",
                  custom_error_message="unknown task (expected forward, gradient, train_step, train or "
                                       "infer_input_size)")]


class NetworkBase(Strict):
    """Layers and loss are validated entry by entry (validate_network) and kept here."""

    _layers: list = PrivateAttr(default_factory=list)
    _loss_entry: tuple | None = PrivateAttr(default=None)

    @property
    def layers(self) -> list:
        return self._layers

    @property
    def loss_entry(self):
        return self._loss_entry


def network_spec_model(for_schema: bool = False):
    """The network spec; layers and loss are checked by validate_network unless for_schema (the
    schema form follows the op registries, so it is built afresh)."""
    return _network_spec_model(True) if for_schema else _network_validation_model()


# One per process: a pydantic model builds its validator on first use, which `verify` of many files
# and every re-solve of the diagnosis would otherwise repeat.
@cache
def _network_validation_model():
    return _network_spec_model(False)


def _network_spec_model(for_schema: bool):
    layers, losses = _registries()
    Layer = _tagged_union(layers, "layer") if for_schema else Any
    Loss = _tagged_union(losses, "loss") if for_schema else Any
    return create_model(
        "NetworkSpec", __base__=NetworkBase,
        id=(Text, ...),
        kind=(Literal["network"], "network"),
        source=(Text, ""),
        document=TITLE_PAGE,
        title=(Localized, Localized()),
        statement=(Localized | None, None),
        model=(list[Layer], Field(min_length=1, max_length=200)),
        loss=(Loss | None, None),
        data=(Data, ...),
        tasks=(list[Task], Field(default_factory=lambda: ["forward"], max_length=20)),
        conventions=(Conventions, Field(default_factory=Conventions)),
        answers=(dict[str, Any], Field(default_factory=dict)),
    )


def validate_network(doc: Document):
    """The validated network spec with `.layers` and `.loss_entry` as (kind, params); all errors at once."""
    layers, losses = _registries()
    problems, spec = [], None
    try:
        spec = validate(doc, network_spec_model())
    except SpecError as err:
        problems += err.problems
    data = doc.data if isinstance(doc.data, dict) else {}
    entries, found = validate_entries(doc, data.get("model", []), layers, ("model",), "layer")
    problems += found
    loss = None
    if data.get("loss") is not None:
        found_loss, found = validate_entries(doc, data["loss"], losses, ("loss",), "loss")
        problems += found
        loss = found_loss[0] if found_loss else None
    if problems:
        raise SpecError(_dedupe(problems))
    spec._layers, spec._loss_entry = entries, loss
    return spec


# ----- validation ------------------------------------------------------------
_WHOLE = object()       # validate's default part: the whole spec (a part may itself be None)


def validate(doc: Document, model_cls, raw: Any = _WHOLE, where: tuple = ()) -> Any:
    """The validated spec (or the part `raw` of it found at `where`), or SpecError with every problem
    located."""
    data = doc.data if raw is _WHOLE else raw
    try:
        return model_cls.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            path = _yaml_path(data, e["loc"])
            problems.append(doc.problem(where + path, _message(e, path, model_cls)))
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


def _message(error: dict, path: tuple = (), model=None) -> str:
    kind, loc = error["type"], error["loc"]
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
    if kind not in ("missing", "extra_forbidden"):   # name the YAML key, not a union tag such as 'dense'
        field = next((str(p) for p in reversed(path) if isinstance(p, str)), field)
    if kind == "missing":
        return f"missing field {field!r}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}{_expected(field, _fields_at(model, loc[:-1]))}"
    if kind == "model_type":               # not 'a valid dictionary or instance of TripletSpec'
        fields = _fields_at(model, loc)
        if fields:
            return f"{field}: expected a mapping with the keys {', '.join(fields)}"
    text = error["msg"]
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
    return f"{field}: {text}" if field != "value" and kind not in ("unknown_layer", "unknown_loss", "inline_math") else text


_PYTORCH_NAMES = {"weight": "W", "bias": "b"}     # PyTorch's parameter names → the spec's


def _expected(field: str, fields: list | None) -> str:
    """' (did you mean 'kernel_size'? expected one of: …)' for an unknown field, when its model is known."""
    if not fields:
        return ""
    guess = _guess(field, fields)
    guess = f"did you mean {guess!r}? " if guess else ""
    return f" ({guess}expected one of: {', '.join(fields)})"


def _guess(field: str, fields: list) -> str | None:
    """PyTorch's name for it, the one field it is a word of (size → kernel_size), or the closest spelling."""
    from difflib import get_close_matches

    if _PYTORCH_NAMES.get(field.lower()) in fields:
        return _PYTORCH_NAMES[field.lower()]
    words = [f for f in fields if field.lower() in f.lower().split("_")]
    if len(words) == 1:
        return words[0]
    close = get_close_matches(field, fields, n=1, cutoff=0.6)
    return close[0] if close else None


def _fields_at(model, loc: tuple) -> list | None:
    """The YAML keys of the model that validates the value at pydantic's `loc` (which names union tags
    as well as fields), or None where the way there is not a plain model."""
    node = model
    for part in loc:
        node = _child(node, part)
        if node is None:
            return None
    found = [t for _, t in _members(node) if isinstance(t, type) and issubclass(t, BaseModel)]
    if len(found) != 1:
        return None
    return [f.alias or name for name, f in found[0].model_fields.items()]


def _members(tp) -> list:
    """(tag, type) for each alternative of a type: Annotated unwrapped (its Tag kept), unions expanded."""
    if get_origin(tp) is Annotated:
        inner, *extra = get_args(tp)
        tag = next((m.tag for m in extra if isinstance(m, Tag)), None)
        return [(tag or t, m) for t, m in _members(inner)]
    if get_origin(tp) in (Union, UnionType):
        return [member for arg in get_args(tp) for member in _members(arg)]
    return [(None, tp)]


def _child(node, part):
    """The type one step down `loc` from `node`: a union member by its tag, a model's field, a list's item."""
    members = _members(node)
    for tag, tp in members:
        if isinstance(part, str) and part in (tag, getattr(tp, "__name__", None)):
            return tp
    for _, tp in members:
        origin, args = get_origin(tp), get_args(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = next((f for name, f in tp.model_fields.items() if part in (name, f.alias)), None)
            if field is not None:
                return field.annotation if not field.metadata else Annotated[(field.annotation, *field.metadata)]
        if isinstance(part, int) and origin in (list, tuple) and args:
            return args[0]
        if isinstance(part, str) and origin is dict and len(args) == 2:
            return args[1]
    return None


def _dedupe(problems: list) -> list:
    """Unique problems in the order of their position in the file."""
    seen, out = set(), []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return sorted(out, key=lambda p: (p.file, p.line or 0, p.col or 0))


def spec_json_schema() -> dict:
    """One JSON Schema for every problem kind: a spec is one of them (selected by `kind`)."""
    from pydantic.json_schema import models_json_schema

    from examsolver.engine.solve import KINDS

    models = []
    for name, kind in KINDS.items():
        factory = kind.load("schema")
        models.append(factory(for_schema=True) if name == "network" else factory())
    from examsolver.spec.vary import Vary

    refs, schema = models_json_schema([(m, "validation") for m in models + [Vary]],
                                      title="examsolver problem spec")
    schema["oneOf"] = [refs[(m, "validation")] for m in models]
    for ref in schema["oneOf"]:      # every kind takes a vary: block (examsolver vary)
        kind = schema["$defs"][ref["$ref"].rsplit("/", 1)[-1]]
        kind.setdefault("properties", {})["vary"] = refs[(Vary, "validation")]
    return schema
