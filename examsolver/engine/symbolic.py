"""The symbolic problem kind: derivatives, gradients, Jacobians, equations, code.

A spec declares symbols, defines named expressions in them (read by the
allow-list parser spec.expr.parse_symbolic, never by sympy from text) and lists
tasks.  Every task computes with sympy and adds Steps; a task with `as:` binds
its result to a name later tasks may use.  Results handed to the answer-key
check are plain sympy (exp/log, no σ objects), so keys written with sigmoid(…)
compare by symbolic equivalence; the steps show σ and softplus where the
course writes them.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, create_model

from examsolver.engine import backprop, codegen, minimize
from examsolver.engine.identity import differs_somewhere, proves_zero
from examsolver.engine.symfuncs import plain, recognize, tidy
from examsolver.errors import ExprError, SpecError
from examsolver.spec.limits import check_sympy_exponentials, located
from examsolver.mathnodes import Call, Deriv, Expr, Seq, Sym
from examsolver.notation.values import sympy_plain
from examsolver.solution import Code, Figure, Phrase, Solution, Step
from examsolver.spec.model import TITLE_PAGE, Localized, Strict, Text as TextField

def _usable_name(name: str) -> str:
    """Declared names become parameters of generated numpy code: no keywords, no module names."""
    import keyword

    if keyword.iskeyword(name) or name in RESERVED_NAMES:
        raise ValueError(f"{name!r} cannot be a symbol name (a Python keyword or a name generated code uses)")
    return name


RESERVED_NAMES = {"numpy", "np", "math", "self", "grads", "inputs", "True", "False", "None"}
NAME = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,30}$"), AfterValidator(_usable_name)]
ExprText = Annotated[Union[str, int], Field(description="expression in the declared symbols")]
Definition = Union[ExprText, list[ExprText], dict[str, Any]]
MAX_DIM = 32


# ----- schema ------------------------------------------------------------------
class _Result(Strict):
    name: TextField | None = None       # result key for the answer key
    as_: NAME | None = Field(None, alias="as")   # bind the result for later tasks


class Derivative(_Result):
    of: ExprText
    wrt: NAME
    equals: list[ExprText] = Field(default_factory=list, max_length=10)
    given: dict[NAME, ExprText] = Field(default_factory=dict)


class Gradient(Derivative):
    pass


class Jacobian(_Result):
    of: ExprText
    wrt: NAME
    elementwise: int | None = Field(None, ge=1, le=MAX_DIM)
    equals: list[ExprText] = Field(default_factory=list, max_length=10)


class Evaluate(Strict):
    of: list[ExprText] = Field(min_length=1, max_length=20)
    at: dict[NAME, Any]
    names: list[TextField] = Field(default_factory=list)


class Simplify(_Result):
    of: ExprText


class Integrate(_Result):
    of: ExprText
    wrt: NAME
    lower: ExprText = Field(alias="from")
    upper: ExprText = Field(alias="to")


class Solve(_Result):
    equation: list[ExprText] = Field(min_length=2, max_length=2)
    for_: NAME = Field(alias="for")
    substitute: dict[NAME, ExprText] = Field(default_factory=dict)
    interval: list[ExprText] | None = Field(None, min_length=2, max_length=2)   # open interval
    cases: dict[NAME, list[ExprText]] = Field(default_factory=dict)


class Claim(Strict):
    of: ExprText
    claimed: ExprText
    source: Localized = Field(default_factory=Localized)


class Plot(Strict):
    of: list[ExprText] = Field(min_length=1, max_length=6)
    wrt: NAME
    range: list[ExprText] = Field(min_length=2, max_length=2)
    derivative: bool = True
    points: int = Field(401, ge=11, le=5001)


class CodeTask(Strict):
    class_: NAME | None = Field(None, alias="class")
    function: NAME | None = None
    activation: ExprText | None = None
    wrt: NAME | None = None
    inputs: list[NAME] = Field(default_factory=list, max_length=MAX_DIM)
    params: list[NAME] = Field(default_factory=list, max_length=MAX_DIM)
    outputs: list[ExprText] = Field(default_factory=list, max_length=MAX_DIM)
    loss: ExprText | None = None
    reduction: Literal["mean", "sum"] = "mean"


TASKS = {"derivative": Derivative, "gradient": Gradient, "jacobian": Jacobian, "evaluate": Evaluate,
         "simplify": Simplify, "integrate": Integrate, "solve": Solve, "claim": Claim, "plot": Plot,
         "code": CodeTask, "backprop": backprop.Backprop, "minimize": minimize.Minimize}


def _task_union():
    def kind(value):
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in TASKS:
            return next(iter(value))
        return None

    members = []
    for key, model in TASKS.items():
        wrapper = create_model(f"{key}_task", __base__=Strict, **{key: (model, ...)})
        members.append(Annotated[wrapper, Tag(key)])
    return Annotated[Union[tuple(members)], Discriminator(
        kind, custom_error_type="unknown_task",
        custom_error_message=f"unknown task (expected one of: {', '.join(TASKS)})")]


@cache   # built once per process (see spec/model.py network_spec_model)
def symbolic_spec_model():
    return create_model(
        "SymbolicSpec", __base__=Strict,
        id=(TextField, ...),
        kind=(Literal["symbolic"], ...),
        source=(TextField, ""),
        document=TITLE_PAGE,
        title=(Localized, Field(default_factory=Localized)),
        statement=(Localized | None, None),
        symbols=(list[NAME], Field(default_factory=list, max_length=100)),
        positive=(list[NAME], Field(default_factory=list, max_length=100)),
        vectors=(dict[NAME, Annotated[int, Field(ge=1, le=MAX_DIM)]], Field(default_factory=dict)),
        distributions=(list[NAME], Field(default_factory=list)),
        functions=(dict[NAME, list[NAME]], Field(default_factory=dict, max_length=10)),
        define=(dict[NAME, Definition], Field(default_factory=dict)),
        notes=(list[Localized], Field(default_factory=list, max_length=20)),
        conventions=(list[Localized], Field(default_factory=list, max_length=20)),
        tasks=(list[_task_union()], Field(min_length=1, max_length=40)),
        answers=(dict[str, Any], Field(default_factory=dict)),
    )


# ----- the namespace of a problem ------------------------------------------------
class Scope:
    """Declared symbols, vectors, definitions and bound results, with the spec location of errors."""

    def __init__(self, spec, doc):
        import sympy as sp

        self.sp, self.doc = sp, doc
        self.names: dict = {}
        self.vectors: dict = {}
        self.distributions = set(spec.distributions)
        for i, name in enumerate(spec.positive):
            if name not in spec.symbols:
                raise SpecError([doc.problem(("positive", i), f"not a declared symbol: {name!r}")])
        for name in spec.symbols:     # sizes, rates: positive, so √(6/(m + n)) is written √6/√(m + n)
            self.names[name] = sp.Symbol(name, positive=True) if name in spec.positive else sp.Symbol(name)
        for name, n in spec.vectors.items():
            parts = [sp.Symbol(f"{name}{i}") for i in range(1, n + 1)]
            for p in parts:
                self.names.setdefault(p.name, p)
            self.vectors[name] = sp.Matrix(parts)
            self.names[name] = self.vectors[name]
        self.derivative_names: dict = {}     # ∂J/∂θ at θ → the plain symbol dJ_dtheta
        self.elsewhere: dict = {}            # ∂J/∂θ's class → the function dJ_dtheta (at another point)
        self.functions: dict = {}            # unspecified J → the classes of J and its partials
        for name, args in spec.functions.items():
            self.unspecified(name, args)
        unknown = self.distributions - set(self.vectors)
        if unknown:
            raise SpecError([doc.problem(("distributions",), f"not a declared vector: {', '.join(sorted(unknown))}")])
        self.defined: dict = {}
        self.display: dict = {}     # how a structured definition is written: softmax(z), not its entries
        for name, text in spec.define.items():
            value = self.definition(text, ("define", name))
            self.defined[name] = value
            self.names[name] = value
            if isinstance(text, dict):
                (kind, args), = text.items()
                args = args if isinstance(args, list) else [args]
                self.display[name] = Call(_fn_name(kind), tuple(Sym(str(a), bold=True) for a in args))

    def unspecified(self, name: str, args: list) -> None:
        """An unspecified function J(θ) (e.g. the data loss under L2): the name J stands for J(θ), and
        d<J>_d<θ> for its derivative, which results carry as that plain symbol (answer keys name it)."""
        sp = self.sp
        variables = []
        for i, arg in enumerate(args):
            if not isinstance(self.names.get(arg), sp.Symbol):
                raise SpecError([self.doc.problem(("functions", name, i), f"{arg!r} is not a declared symbol")])
            variables.append(self.names[arg])
        base, partials = _unspecified_function(name, tuple(variables))
        self.names[name] = base(*variables)
        self.functions[name] = (base, *partials)
        for v, partial in zip(variables, partials):
            key = f"d{name}_d{v.name}"
            self.names[key] = partial(*variables)
            self.derivative_names[self.names[key]] = sp.Symbol(key)
            self.elsewhere[partial] = _sympy_function(key)

    def answer_form(self, value):
        """A result as answer keys write it: ∂J/∂θ at θ is the plain symbol dJ_dtheta, at another point
        (an optimizer's θ⁽¹⁾) the function of that point dJ_dtheta(θ⁽¹⁾)."""
        value = substitute(plain(value), self.derivative_names)
        for partial, named in self.elsewhere.items():
            value = value.replace(partial, named)
        return value

    def unspecified_in(self, expr) -> list[str]:
        """The unspecified functions expr holds (their values are known at no point)."""
        return [name for name, classes in self.functions.items() if expr.has(*classes)]

    def parse(self, text, loc: tuple):
        from examsolver.spec.expr import parse_symbolic

        try:
            return parse_symbolic(text, self.names)
        except ExprError as err:
            raise SpecError([self.doc.problem(loc, str(err))]) from None

    def definition(self, value, loc: tuple):
        sp = self.sp
        if isinstance(value, list):
            items = [self.parse(v, loc + (i,)) for i, v in enumerate(value)]
            return sp.Matrix(items)
        if isinstance(value, dict):
            return self.structured(value, loc)
        return self.parse(value, loc)

    def structured(self, value: dict, loc: tuple):
        """{op: v}: a registered op written by its own sympy rule, a layer on a declared vector
        ({softmax: z}) or a loss of [target, output] ({cross_entropy: [g, o]})."""
        from examsolver.engine.ops import LAYERS, LOSSES

        if len(value) != 1 or next(iter(value)) not in {**LAYERS, **LOSSES}:
            raise SpecError([self.doc.problem(loc, "expected an expression, a list, {layer: vector} such as "
                                                   "{softmax: z}, or {loss: [target, output]} such as "
                                                   "{cross_entropy: [g, o]}")])
        (kind, args), = value.items()
        if kind in LAYERS:
            layer = LAYERS[kind].with_defaults()
            out = layer.sympy_forward(self.vector(args, loc + (kind,)), self.sp.exp) if layer else None
        else:
            if not isinstance(args, list) or len(args) != 2:
                raise SpecError([self.doc.problem(loc + (kind,), f"{kind} takes [target, output]")])
            g, o = (self.vector(a, loc + (kind, i)) for i, a in enumerate(args))
            if g.shape != o.shape:
                raise SpecError([self.doc.problem(loc + (kind,), f"vectors of different lengths ({g.rows} and {o.rows})")])
            loss = LOSSES[kind].with_defaults()
            out = loss.sympy_value(o, g) if loss else None
        if out is None:
            raise SpecError([self.doc.problem(loc + (kind,), f"{kind} has no symbolic form")])
        return out

    def vector(self, name, loc):
        value = self.names.get(name) if isinstance(name, str) else None
        if not isinstance(value, self.sp.MatrixBase) or value.cols != 1:
            raise SpecError([self.doc.problem(loc, f"{name!r} is not a declared or defined vector")])
        return value

    def named(self, name: str):
        """The declared symbol of that name (with its assumptions), else a new one."""
        value = self.names.get(name)
        return value if isinstance(value, self.sp.Symbol) else self.sp.Symbol(name)

    def symbol(self, name: str, loc: tuple):
        value = self.names.get(name)
        if isinstance(value, self.sp.Symbol) or (isinstance(value, self.sp.MatrixBase) and name in self.vectors):
            return value
        raise SpecError([self.doc.problem(loc, f"{name!r} is not a declared symbol or vector")])


def display_name(text) -> Sym:
    """'L_sq' → L_sq as a symbol; 'q1' → q₁; other text stays one symbol."""
    text = str(text)
    match = re.fullmatch(r"([A-Za-z]+?)_?(\d+|[a-z]+)?", text)
    if match and match.group(2) and "_" in text or (match and match.group(2) and match.group(2).isdigit()):
        return Sym(match.group(1), sub=match.group(2))
    return Sym(text)


def shown(expr):
    """The form a step shows: σ and softplus recognized."""
    return Expr(recognize(expr))


# ----- tasks -------------------------------------------------------------------
class Solver:
    def __init__(self, spec, doc):
        import sympy as sp

        self.sp, self.spec, self.doc = sp, spec, doc
        self.scope = Scope(spec, doc)
        self.solution = Solution(problem_id=spec.id, title=spec.title.model_dump(), source=spec.source,
                                 statement=spec.statement.model_dump() if spec.statement else None)
        self.solution.results = _Results()
        self.solution.results.doc = doc

    def run(self) -> Solution:
        s = self.solution
        for note in self.spec.conventions:
            s.conventions.append(Phrase("symbolic.note", {"text": note.model_dump()}))
        if self.scope.defined:
            self.definitions()
        for i, entry in enumerate(self.spec.tasks):
            (kind, _), = entry.model_dump(by_alias=False).items()
            task = getattr(entry, kind)
            s.results.where = ("tasks", i)
            with located(self.doc, ("tasks", i), codegen.NoNumericForm):   # over budget → refused at the task
                try:
                    getattr(self, "task_" + kind)(task, ("tasks", i, kind))
                except (TypeError, ValueError, AttributeError, NotImplementedError, OverflowError) as err:
                    if not _raised_in_sympy(err):
                        raise                       # a bug of ours stays one
                    raise SpecError([self.doc.problem(("tasks", i), f"sympy cannot carry out this {kind} with "
                                                                    f"these values ({type(err).__name__}: "
                                                                    f"{str(err)[:120]})")]) from None
        if self.spec.notes:
            section = s.section("symbolic.section.notes")
            for note in self.spec.notes:
                section.say("symbolic.note", text=note.model_dump())
        s.number_equations()
        return s

    # ----- helpers ------------------------------------------------------------
    def expr(self, text, loc):
        return self.scope.parse(text, loc)

    def lhs_of(self, text) -> Sym | Expr:
        if isinstance(text, str) and text in self.scope.names:
            return display_name(text)
        return Expr(recognize(self.expr(text, ())))

    def record(self, task, default_name: str, value) -> None:
        name = task.name or default_name
        self.solution.results[name] = self.scope.answer_form(value)
        if task.as_:
            self.scope.names[task.as_] = value

    def given(self, expr, given: dict, loc):
        subs = {self.scope.symbol(k, loc + ("given", k)): self.expr(v, loc + ("given", k)) for k, v in given.items()}
        return substitute(expr, subs)

    def chain(self, f, x):
        """Forms of df/dx: the elementary derivative when f has no σ/softplus in it, else
        the derivative of the σ/softplus form (σ′ = σ(1 − σ)); then a tidier form."""
        sp = self.sp
        recognized = recognize(f)
        if recognized == f:
            raw = sp.diff(f, x)
            candidates = [raw, recognize(raw), tidy(recognize(raw))]
        else:
            d = sp.diff(recognized, x)
            candidates = [d, tidy(d)]
        forms = []
        for form in candidates:
            if all(str(form) != str(f.expr) for f in forms):
                forms.append(Expr(form))
        return forms

    def equal(self, a, b) -> bool:
        sp = self.sp
        if getattr(a, "shape", ()) != getattr(b, "shape", ()):   # a vector is never equal to a scalar
            return False
        diff = plain(a) - plain(b)
        if proves_zero(diff):                   # exact and fast; a false claim is refuted at a point
            return True
        if differs_somewhere(diff):
            return False
        entries = list(diff) if isinstance(diff, sp.MatrixBase) else [diff]
        return all(sp.cancel(sp.together(d)) == 0 or sp.simplify(d) == 0 for d in entries)

    def check_equals(self, section, lhs, value, candidates, loc, forms: list, given: dict | None = None) -> list:
        """forms + each candidate the engine proves equal (its σ form, or as written when that is new)."""
        for j, text in enumerate(candidates):
            candidate = self.given(self.expr(text, loc + ("equals", j)), given or {}, loc)
            if not self.equal(value, candidate):
                section.say("symbolic.not_equal", lhs=lhs, candidate=shown(candidate))
                continue
            seen = {str(f.expr) for f in forms}
            for form in (recognize(candidate), candidate):
                if str(form) not in seen and (form is not candidate or self.sp.count_ops(form) <= 6):
                    forms.append(Expr(form))
                    break
        return forms

    # ----- definitions --------------------------------------------------------
    def definitions(self) -> None:
        section = self.solution.section("symbolic.section.definitions")
        for name, value in self.scope.defined.items():
            forms = [Expr(value)] + ([Expr(recognize(value))] if recognize(value) != value else [])
            if name in self.scope.display:
                forms = [self.scope.display[name]]
            section.add(Step(lhs=display_name(name), extra_forms=forms))

    # ----- derivative / gradient / jacobian ------------------------------------
    def task_derivative(self, task, loc) -> None:
        sp = self.sp
        f = self.given(self.expr(task.of, loc + ("of",)), task.given, loc)
        x = self.scope.symbol(task.wrt, loc + ("wrt",))
        if isinstance(x, sp.MatrixBase):
            raise SpecError([self.doc.problem(loc + ("wrt",), "derivative is with respect to a scalar; use gradient or jacobian")])
        f = _piecewise_max(f, sp)
        raw = f.applyfunc(lambda e: sp.diff(e, x)) if isinstance(f, sp.MatrixBase) else sp.diff(f, x)
        raw = _piecewise_max(raw, sp)
        section = self.solution.section("symbolic.section.derivative", f=self.lhs_of(task.of), x=Sym(task.wrt))
        if f.has(sp.Piecewise):
            section.say("symbolic.max_ties")
        lhs = Deriv(self.lhs_of(task.of), Sym(task.wrt))
        value = sp.diff(recognize(f), x) if not isinstance(f, sp.MatrixBase) else raw
        forms = [Expr(recognize(raw))] if isinstance(f, sp.MatrixBase) else self.chain(f, x)
        forms = self.check_equals(section, lhs, value, task.equals, loc, forms, task.given)
        section.add(Step(lhs=lhs, extra_forms=forms))
        self.record(task, f"d{task.of}/d{task.wrt}", value)

    def task_gradient(self, task, loc) -> None:
        sp = self.sp
        f = self.given(self.expr(task.of, loc + ("of",)), task.given, loc)
        wrt = self.scope.symbol(task.wrt, loc + ("wrt",))
        xs = list(wrt) if isinstance(wrt, sp.MatrixBase) else [wrt]
        if isinstance(f, sp.MatrixBase):
            raise SpecError([self.doc.problem(loc + ("of",), "gradient of a vector: use jacobian")])
        f = _piecewise_max(f, sp)
        section = self.solution.section("symbolic.section.gradient", f=self.lhs_of(task.of), x=Sym(task.wrt, bold=len(xs) > 1))
        if f.has(sp.Piecewise):
            section.say("symbolic.max_ties")
        parts, recognized, name = [], recognize(f), self.lhs_of(task.of)
        for xi in xs:
            d = tidy(sp.diff(recognized, xi))
            parts.append(d)
            if len(xs) > 1:
                section.add(Step(lhs=Deriv(name, Sym(xi.name)), extra_forms=[Expr(d)]))
        value = sp.Matrix(parts) if len(xs) > 1 else parts[0]
        lhs = Deriv(name, Sym(task.wrt, bold=len(xs) > 1))
        forms = self.check_equals(section, lhs, value, task.equals, loc, [Expr(value)], task.given)
        section.add(Step(lhs=lhs, extra_forms=forms))
        self.record(task, f"d{task.of}/d{task.wrt}", value)

    def task_jacobian(self, task, loc) -> None:
        sp = self.sp
        f = self.expr(task.of, loc + ("of",))
        section = self.solution.section("symbolic.section.jacobian", f=self.lhs_of(task.of), x=Sym(task.wrt, bold=True))
        if task.elementwise:
            x = self.scope.symbol(task.wrt, loc + ("wrt",))
            if isinstance(f, sp.MatrixBase) or isinstance(x, sp.MatrixBase):
                raise SpecError([self.doc.problem(loc, "elementwise: `of` is a scalar function of the scalar `wrt`")])
            xs = [sp.Symbol(f"{task.wrt}{i}") for i in range(1, task.elementwise + 1)]
            f = sp.Matrix([f.subs(x, xi) for xi in xs])
            section.say("symbolic.elementwise", y=Sym("y", bold=True), x=Sym(task.wrt, bold=True), n=task.elementwise,
                        value=shown(f))
        else:
            wrt = self.scope.symbol(task.wrt, loc + ("wrt",))
            xs = list(wrt) if isinstance(wrt, sp.MatrixBase) else [wrt]
            if not isinstance(f, sp.MatrixBase):
                f = sp.Matrix([f])
        if f.has(sp.Max, sp.Min):
            section.say("symbolic.max_ties")
        J = _piecewise_max(f, sp).jacobian(sp.Matrix(xs))
        shown_J = recognize(J)
        if task.elementwise:
            off = all(J[i, j] == 0 for i in range(J.rows) for j in range(J.cols) if i != j)
            section.say("symbolic.diagonal" if off else "symbolic.not_diagonal")
        lhs = Deriv(Sym("y", bold=True) if task.elementwise else self.lhs_of(task.of), Sym(task.wrt, bold=True))
        forms = self.check_equals(section, lhs, J, task.equals, loc, [Expr(shown_J)])
        section.add(Step(lhs=lhs, extra_forms=forms))
        self.record(task, "jacobian", J)

    # ----- evaluate / simplify / integrate -------------------------------------
    def task_evaluate(self, task, loc) -> None:
        sp = self.sp
        subs, shown_at = {}, []
        for name, text in task.at.items():
            target = self.scope.symbol(name, loc + ("at", name))
            value = self.scope.definition(text, loc + ("at", name))
            entries = value if isinstance(value, sp.MatrixBase) else [value]
            if any(getattr(v, "is_number", False) and v.is_real is False for v in entries):
                raise SpecError([self.doc.problem(loc + ("at", name), f"{name}: values are real numbers "
                                                                      f"(got {_plain_text(value)})")])
            if isinstance(target, sp.MatrixBase):
                if not isinstance(value, sp.MatrixBase) or value.shape != target.shape:
                    raise SpecError([self.doc.problem(loc + ("at", name),
                                                      f"{name} has {target.rows} entries, the value given has "
                                                      f"{value.rows if isinstance(value, sp.MatrixBase) else 1}")])
                self._validate_distribution(name, value, loc + ("at", name))
                subs.update(dict(zip(target, value)))
            elif isinstance(value, sp.MatrixBase):
                raise SpecError([self.doc.problem(loc + ("at", name), f"{name} is a scalar, the value given a vector")])
            else:
                subs[target] = value
            shown_at.append((name, value))
        section = self.solution.section("symbolic.section.evaluate")
        section.say("symbolic.values", values=", ".join(f"{n} = {_plain_text(v)}" for n, v in shown_at))
        for j, text in enumerate(task.of):
            expr = self.expr(text, loc + ("of", j))
            value = substitute(plain(_piecewise_max(expr, sp)), subs)
            with located(self.doc, loc + ("at",)):
                check_sympy_exponentials(value)
            value = value.applyfunc(sp.simplify) if isinstance(value, sp.MatrixBase) else sp.simplify(value)
            name = task.names[j] if j < len(task.names) else f"{text}({', '.join(f'{n}={_plain_text(v)}' for n, v in shown_at)})"
            result = _numeric(value, sp)
            defined = isinstance(text, str) and text in self.scope.names
            lhs = self.lhs_of(text) if defined or j >= len(task.names) else Sym(task.names[j])
            section.add(Step(lhs=lhs, extra_forms=[shown(expr)] if defined else [], result=result))
            self.solution.results[name] = result

    def _validate_distribution(self, name, value, loc) -> None:
        if name not in self.scope.distributions:
            return
        sp = self.sp
        if any((v.is_negative or v.is_number is False) for v in value):
            raise SpecError([self.doc.problem(loc, f"{name} is a distribution: entries must be numbers ≥ 0")])
        total = sp.nsimplify(sum(value))
        if total != 1:
            raise SpecError([self.doc.problem(loc, f"{name} is a distribution: entries must sum to 1, they sum to {total}")])

    def task_simplify(self, task, loc) -> None:
        sp = self.sp
        expr = self.expr(task.of, loc + ("of",))
        value = expr.applyfunc(sp.simplify) if isinstance(expr, sp.MatrixBase) else sp.simplify(expr)
        section = self.solution.section("symbolic.section.simplify")
        section.add(Step(lhs=self.lhs_of(task.of), extra_forms=[shown(expr), Expr(recognize(value))]))
        self.record(task, str(task.of), value)

    def task_integrate(self, task, loc) -> None:
        sp = self.sp
        f = self.expr(task.of, loc + ("of",))
        x = self.scope.symbol(task.wrt, loc + ("wrt",))
        lo, hi = self.expr(task.lower, loc + ("from",)), self.expr(task.upper, loc + ("to",))
        for part, value in (("of", f), ("wrt", x), ("from", lo), ("to", hi)):
            if isinstance(value, sp.MatrixBase):
                raise SpecError([self.doc.problem(loc + (part,), "an integral is of a scalar over a scalar symbol")])
        value = sp.simplify(sp.integrate(f, (x, lo, hi)))
        section = self.solution.section("symbolic.section.integrate")
        section.add(Step(lhs=Expr(sp.Integral(f, (x, lo, hi))), extra_forms=[Expr(value)]))
        self.record(task, f"integral({task.of})", value)

    # ----- equations and claims ------------------------------------------------
    def task_solve(self, task, loc) -> None:
        sp = self.sp
        lhs, rhs = (recognize(self.expr(t, loc + ("equation", i))) for i, t in enumerate(task.equation))
        if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
            raise SpecError([self.doc.problem(loc + ("equation",), "an equation to solve is between scalars")])
        unknown = self.scope.named(task.for_)
        for name, text in task.substitute.items():
            pattern = recognize(self.expr(text, loc + ("substitute", name)))
            lhs, rhs = lhs.subs(pattern, self.scope.named(name)), rhs.subs(pattern, self.scope.named(name))
        domain = sp.Reals
        if task.interval:
            lo, hi = (self.expr(t, loc + ("interval", i)) for i, t in enumerate(task.interval))
            for i, bound in enumerate((lo, hi)):
                if isinstance(bound, sp.MatrixBase) or getattr(bound, "is_real", None) is False:
                    raise SpecError([self.doc.problem(loc + ("interval", i), "an interval's ends are real numbers")])
            domain = sp.Interval.open(lo, hi)
        if not _small_enough(lhs - rhs, sp):     # factoring is unbounded on e^1000 coefficients: refused first
            raise SpecError([self.doc.problem(loc + ("equation",), "an equation too large to solve exactly "
                                              "(over 60 operations, or a number beyond 10¹²)")])
        section = self.solution.section("symbolic.section.solve", unknown=Sym(task.for_))
        factored = sp.factor(lhs - rhs)
        section.add(Step(lhs=Expr(lhs - rhs), extra_forms=[Expr(factored), Expr(sp.Integer(0))]))
        if task.interval:
            section.say("symbolic.domain", unknown=Sym(task.for_), domain=Expr(domain))
        cases = _cases(task.cases, self, loc)
        for case in cases:
            equation = substitute(factored, case)
            solutions = _solveset(equation, unknown, domain)
            if case:
                section.say("symbolic.case", case=", ".join(f"{k} = {v}" for k, v in case.items()))
            for factor in sp.Mul.make_args(sp.factor(equation)):
                base = factor.base if factor.is_Pow else factor
                if base.has(unknown):
                    self._explain_factor(section, base, unknown, domain)
            if solutions == sp.EmptySet:
                section.say("symbolic.no_solution", unknown=Sym(task.for_))
            else:
                section.say("symbolic.solutions", unknown=Sym(task.for_), solutions=Expr(solutions))
            key = (task.name or f"solve({task.for_})") + ("" if not case else "|" + ",".join(f"{k}={v}" for k, v in case.items()))
            self.solution.results[key] = solutions

    def _explain_factor(self, section, factor, unknown, domain) -> None:
        sp = self.sp
        roots = _solveset(factor, unknown, sp.Reals)
        inside = _solveset(factor, unknown, domain)
        if roots == sp.EmptySet and sp.degree(factor, unknown) == 2:
            section.say("symbolic.no_real_root", factor=Expr(factor), disc=Expr(sp.discriminant(factor, unknown)))
        elif inside == sp.EmptySet and roots != sp.EmptySet:
            section.say("symbolic.root_outside", factor=Expr(factor), roots=Expr(roots))
        else:
            section.say("symbolic.factor_roots", factor=Expr(factor), roots=Expr(inside))

    def task_claim(self, task, loc) -> None:
        sp = self.sp
        value = self.expr(task.of, loc + ("of",))
        claimed = self.expr(task.claimed, loc + ("claimed",))
        if getattr(value, "shape", ()) != getattr(claimed, "shape", ()):
            raise SpecError([self.doc.problem(loc + ("claimed",), "the claimed value and the value it is about "
                                                                  "differ in shape (a vector against a scalar?)")])
        section = self.solution.section("symbolic.section.claim")
        source = task.source.model_dump() if (task.source.hr or task.source.en) else {"hr": "", "en": ""}
        if self.equal(value, claimed):
            section.say("symbolic.claim_holds", claimed=shown(claimed), value=shown(value), source=source)
            return
        section.say("symbolic.claim_fails", claimed=shown(claimed), value=shown(value), source=source)
        free = sorted(plain(value - claimed).free_symbols, key=lambda s: s.name)
        if free and _small_enough(plain(value - claimed), sp):      # optional: only when its cost is bounded
            # check=False: sympy's check of each root simplifies without bound (seconds on odd claims);
            # the roots of value = claimed are shown as the condition, not used further
            where = sp.solve(sp.Eq(plain(value), plain(claimed)), free[0], dict=True, check=False, simplify=False)
            if where:
                equations = tuple(Expr(sp.Eq(k, sp.simplify(v))) for k, v in where[0].items())
                section.say("symbolic.claim_only_when", condition=Seq(equations))     # a formula, not prose
        self.solution.results[f"claim({task.claimed})"] = sp.false

    # ----- plots and code -------------------------------------------------------
    def task_plot(self, task, loc) -> None:
        import numpy as np
        sp = self.sp
        x = self.scope.symbol(task.wrt, loc + ("wrt",))
        if not isinstance(x, sp.Symbol):
            raise SpecError([self.doc.problem(loc + ("wrt",), f"{task.wrt!r} is not a scalar symbol (a plot is over one)")])
        lo, hi = (self._float(t, loc + ("range", i)) for i, t in enumerate(task.range))
        if not lo < hi:
            raise SpecError([self.doc.problem(loc + ("range",), "range must be [low, high] with low < high")])
        grid = np.linspace(lo, hi, task.points)
        series = []
        for j, text in enumerate(task.of):
            f = recognize(self.expr(text, loc + ("of", j)))
            if isinstance(f, sp.MatrixBase):
                raise SpecError([self.doc.problem(loc + ("of", j), f"{text!r} is a vector: a plot is of a scalar")])
            curves = [(f, {"hr": f"{text}", "en": f"{text}"})]
            if task.derivative:
                curves.append((tidy(sp.diff(f, x)), {"hr": f"{text}′", "en": f"{text}′"}))
            for expr, label in curves:
                series.append({"x": grid.tolist(), "y": codegen.sample(expr, x, grid).tolist(), "label": label})
        section = self.solution.section("symbolic.section.plot")
        section.add(Figure("curves", {"series": series, "xlabel": task.wrt, "ylabel": "",
                                      "size": (5, 3.5)}, caption=Phrase("symbolic.plot_caption", {})))
        self.solution.results.setdefault("plot", len(series))

    def _float(self, text, loc) -> float:
        value = self.expr(text, loc)
        if not getattr(value, "is_real", False) or not value.is_number:
            raise SpecError([self.doc.problem(loc, f"expected a real number, got {text!r}")])
        return float(value)

    def task_backprop(self, task, loc) -> None:
        backprop.run(self, task, loc)

    def task_minimize(self, task, loc) -> None:
        minimize.run(self, task, loc)

    def task_code(self, task, loc) -> None:
        self._check_code_names(task, loc)
        section = self.solution.section("symbolic.section.code")
        if task.activation is not None and task.class_:
            x = self.scope.symbol(task.wrt or "x", loc + ("wrt",))
            f = recognize(self.expr(task.activation, loc + ("activation",)))
            source, notes = codegen.activation_layer(task.class_, f, x)
        elif task.outputs and task.class_:
            ins = [self.scope.symbol(n, loc + ("inputs",)) for n in task.inputs]
            ps = [self.scope.symbol(n, loc + ("params",)) for n in task.params]
            outs = [_piecewise_max(self.expr(t, loc + ("outputs", j)), self.sp) for j, t in enumerate(task.outputs)]
            source, notes = codegen.equations_layer(task.class_, ins, ps, outs)
        elif task.loss is not None and task.function:
            z = self.scope.symbol(task.wrt or "z", loc + ("wrt",))
            ins = [self.scope.symbol(n, loc + ("inputs",)) for n in task.inputs] or [z]
            loss = recognize(self.expr(task.loss, loc + ("loss",)))
            source, notes = codegen.loss_function(task.function, loss, z, ins, task.reduction)
        else:
            raise SpecError([self.doc.problem(loc, "code needs class + activation, class + inputs/params/outputs, "
                                                   "or function + loss")])
        for key in notes:
            section.say(key)
        section.add(Code("python", source, caption=Phrase("symbolic.code_caption", {})))
        self.solution.results[f"code.{task.class_ or task.function}"] = source


    def _check_code_names(self, task, loc) -> None:
        """Arguments of generated code: scalar symbols, each once (a name twice would make one of them
        silently shadow the other), the loss's variable among the function's inputs."""
        seen = {}
        for field in ("inputs", "params"):
            for j, name in enumerate(getattr(task, field)):
                here = loc + (field, j)
                if name in seen:
                    raise SpecError([self.doc.problem(here, f"{name!r} is already among the {seen[name]} of the code")])
                seen[name] = field
                if not isinstance(self.scope.symbol(name, here), self.sp.Symbol):
                    raise SpecError([self.doc.problem(here, f"{name!r} is not a scalar symbol (code takes scalars)")])
        if task.outputs and not task.inputs:
            raise SpecError([self.doc.problem(loc, "code with outputs needs at least one input")])
        if task.loss is not None and task.inputs and (task.wrt or "z") not in task.inputs:
            raise SpecError([self.doc.problem(loc + ("inputs",), f"the inputs must include {task.wrt or 'z'}, "
                                                                 "the variable of the loss")])


# ----- small helpers ------------------------------------------------------------
def _unspecified_function(name: str, variables: tuple):
    """J(θ) as a sympy function printed J(θ), with its derivatives ∂J/∂θᵢ as functions of their own.

    Why not sympy's Derivative: it prints as Derivative(J(theta), theta); here ∂J/∂θ prints as the
    course writes it, and it stays a function of θ (so a second derivative is not silently 0).
    At another point (an optimizer's θ⁽¹⁾) the point is written after it: ∂J/∂θ(θ − η ∂J/∂θ)."""
    import sympy as sp

    def printed(cls_name, text, latex, point_always: bool):
        def at(self, written):
            return "" if self.args == variables and not point_always else ", ".join(written(a) for a in self.args)

        def plain(self, printer):
            point = at(self, printer._print)
            return f"{text}({point})" if point else text

        def tex(self, printer, exp=None):
            point = at(self, printer._print)
            form = f"{latex}\\left({point}\\right)" if point else latex
            return form if exp is None else f"\\left({form}\\right)^{{{exp}}}"

        # __module__: the printers tell a sympy value by its class's module (notation/values.py)
        return type(cls_name, (sp.Function,), {"_sympystr": plain, "_latex": tex, "__module__": sp.Function.__module__})

    partials = [printed(f"d{name}_d{v.name}", f"∂{name}/∂{v.name}",
                        f"\\frac{{\\partial {name}}}{{\\partial {sp.latex(v)}}}", False) for v in variables]
    base = printed(name, name, name, True)
    base.fdiff = lambda self, argindex=1: partials[argindex - 1](*self.args)
    return base, partials


def _sympy_function(name: str):
    """A sympy function class printed name(args); sympy's own Function(name) has no module, by which
    the printers tell a sympy value (notation/values.py)."""
    import sympy as sp

    return type(name, (sp.Function,), {"__module__": sp.Function.__module__})


@lru_cache(maxsize=256)
def _solveset(expr, unknown, domain):
    """sympy's solveset, once per equation: the cases of a `solve` share factors (2s² − 2s + 1 for y = 0
    and for y = 1), each explained over the reals and over the interval."""
    import sympy as sp

    return sp.solveset(expr, unknown, domain)


def _piecewise_max(expr, sp):
    """Max(a, b) → a where a ≥ b, else b: ties go to the first argument (stated in the solution)."""
    def rewrite(*args):
        out = args[-1]
        for a in reversed(args[:-1]):
            out = sp.Piecewise((a, sp.And(*[a >= b for b in args if b is not a])), (out, True))
        return out

    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: _piecewise_max(e, sp))
    if not hasattr(expr, "has") or not expr.has(sp.Max, sp.Min):
        return expr
    expr = expr.replace(sp.Max, rewrite)
    return expr.replace(sp.Min, lambda *a: -rewrite(*[-x for x in a]))


def _small_enough(expr, sp) -> bool:
    """Few operations and no huge numbers: sympy's solve factors polynomials, which with a coefficient such
    as e^1000 runs for minutes; an optional analysis is skipped then, a `solve` task refused."""
    if sp.count_ops(expr) > 60:
        return False
    for node in sp.preorder_traversal(expr):
        if getattr(node, "is_number", False) and not node.is_Rational:
            magnitude = abs(node.evalf(5))
            if not magnitude.is_number or magnitude > 10**12:
                return False
        elif getattr(node, "is_Rational", False) and max(abs(node.p), node.q) > 10**12:
            return False
    return True


def _raised_in_sympy(err: BaseException) -> bool:
    """Whether the exception comes from inside sympy (odd input sympy refuses), not from our code."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and any(f"/{lib}/" in tb.tb_frame.f_code.co_filename.replace("\\", "/")
                                  for lib in ("sympy", "mpmath"))


def _cases(cases: dict, solver, loc) -> list[dict]:
    import itertools

    if not cases:
        return [{}]
    names = list(cases)
    values = [[solver.expr(v, loc + ("cases", n, i)) for i, v in enumerate(cases[n])] for n in names]
    for n, row in zip(names, values):
        for i, v in enumerate(row):
            if isinstance(v, solver.sp.MatrixBase):
                raise SpecError([solver.doc.problem(loc + ("cases", n, i), f"{n}: a case's value is a scalar")])
    return [dict(zip((solver.scope.named(n) for n in names), combo)) for combo in itertools.product(*values)]


def substitute(expr, values: dict):
    """expr with every key of values replaced at once: the point (a, b) = (a⁽¹⁾, b⁽¹⁾) where a⁽¹⁾ holds b.
    One after another (sympy's plain subs) would put b⁽¹⁾ into the a⁽¹⁾ just substituted."""
    return expr.subs(values, simultaneous=True) if values else expr


def _numeric(value, sp):
    """A number as Exact (exact form + decimals in the steps); anything else stays sympy."""
    from examsolver.engine.scalar import Exact

    if isinstance(value, sp.MatrixBase):
        if all(v.is_number for v in value):
            import numpy as np

            out = np.empty(value.shape if value.cols > 1 else (value.rows,), dtype=object)
            for index, v in enumerate(value):
                check_sympy_exponentials(v)      # e^(e^(e^10)) is refused, not evaluated
                out.flat[index] = Exact._sympy(v)
            return out
        return value
    if getattr(value, "is_number", False) and value.is_real is not False:
        check_sympy_exponentials(value)
        return Exact._sympy(value)
    return value


def _fn_name(kind: str) -> str:
    """How a registered op is written as a function (sigmoid: σ)."""
    from examsolver.engine.ops import LAYERS

    return getattr(LAYERS.get(kind), "fn_name", None) or kind


def _plain_text(value) -> str:
    if hasattr(value, "tolist") and not hasattr(value, "free_symbols"):
        return str(value.tolist())
    if type(value).__module__.startswith("sympy") and hasattr(value, "rows"):
        return "[" + ", ".join(sympy_plain(v) for v in value) + "]"
    return sympy_plain(value)


class _Results(dict):
    """Results by name, each computed once: a second task writing the same name (an `evaluate` over a
    gradient's result) is refused where it is written instead of replacing the first silently."""

    doc, where = None, ()                  # the task being solved, for the message's location

    def __setitem__(self, name, value):
        if name in self:
            raise SpecError([self.doc.problem(self.where, f"the result {name!r} is already computed by an "
                                                          f"earlier task; give this one another `name:`")])
        super().__setitem__(name, value)


def solve(spec, doc) -> Solution:
    return Solver(spec, doc).run()
