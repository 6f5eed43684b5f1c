"""Formula nodes behave as immutable records (they replaced frozen dataclasses for start-up time)."""

from __future__ import annotations

import pytest

from examsolver.mathnodes import Const, Deriv, Norm, Op, Sym, Transpose, Value


def test_fields_positional_named_and_defaults():
    assert (Sym("W", "1").base, Sym("W", "1").sub, Sym("W", "1").bold) == ("W", "1", False)
    assert Sym("W", bold=True).bold and Sym("W", bold=True).sub == ""
    assert Value(3).layout == "col" and Value(3, "row").layout == "row"
    assert Norm(Sym("x")).p == 2 and Norm(Sym("x"), p=1).p == 1


@pytest.mark.parametrize("make", [lambda: Sym(), lambda: Sym("a", "b", "c", True, False, "extra"),
                                  lambda: Sym("a", base="b"), lambda: Sym("a", colour="red")])
def test_wrong_fields_are_refused(make):
    with pytest.raises(TypeError):
        make()


def test_nodes_are_immutable_and_replace_makes_a_new_one():
    w = Sym("W", "1", bold=True)
    with pytest.raises(AttributeError):
        w.sub = "2"
    v = w.replace(sub="2")
    assert (w.sub, v.sub, v.bold) == ("1", "2", True)
    assert w.hatted().hat and not w.hat
    assert w.of_example(3).sup == "(3)" and w.of_example(None) is w


def test_symbols_compare_and_hash_by_value_other_nodes_by_identity():
    assert Sym("x", "1") == Sym("x", "1") and hash(Sym("x", "1")) == hash(Sym("x", "1"))
    assert Sym("x", "1") != Sym("x", "2") and Sym("x") != Sym("x", bold=True)
    assert {Sym("x"): 1}[Sym("x")] == 1
    assert Transpose(Sym("W")) == Transpose(Sym("W")) and Deriv(Sym("L"), Sym("W")) == Deriv(Sym("L"), Sym("W"))
    assert Sym("T") != Transpose(Sym("T"))
    assert Const(1) != Const(1)          # a literal in a formula is a place, not a value
    op = Sym("a") + Sym("b")
    assert isinstance(op, Op) and op.op == "+" and op.args == (Sym("a"), Sym("b"))


def test_repr_names_the_fields():
    assert repr(Value(2, "row")) == "Value(value=2, layout='row')"
