"""The MathML printer: formula nodes → MathML whose structure says how each symbol is spaced.

Expected trees are written by hand as (tag, text or children, attributes) and compared with the
parsed output, so a sign that became binary, a fence that stretches around one line or a
decimal point under Croatian fails here before anyone looks at a screenshot.
"""

from __future__ import annotations

from fractions import Fraction
from xml.etree import ElementTree

import numpy as np

from examsolver.engine.scalar import Exact
from examsolver.mathnodes import Const, Frac, Neg, Op, Seq, Sym, Value, call
from examsolver.render.mathml import MathMLPrinter, mathml

NS = "{http://www.w3.org/1998/Math/MathML}"


def tree(markup: str):
    """(tag, text | [children], {kept attributes}); mrows of one child are unwrapped; a sequence of
    several elements is a list."""
    children = [_simple(c) for c in ElementTree.fromstring(f'<math xmlns="{NS[1:-1]}">{markup}</math>')]
    return children[0] if len(children) == 1 else children


def _simple(element):
    tag = element.tag.replace(NS, "")
    children = [_simple(c) for c in element]
    if tag == "mrow" and len(children) == 1:
        return children[0]
    attrs = {k: v for k, v in element.attrib.items() if k in ("form", "stretchy", "separator")}
    return (tag, children if children else (element.text or ""), attrs)


def printed(node, lang="en") -> tuple:
    return tree(MathMLPrinter(decimal_separator="," if lang == "hr" else ".", lang=lang).print(node))


def mo(text, **attrs):
    return ("mo", text, attrs)


SIGN = mo("−", form="prefix")
OPEN, CLOSE = mo("(", form="prefix", stretchy="false"), mo(")", form="postfix", stretchy="false")


def test_a_bold_symbol_with_index_and_example_is_one_subsup():
    assert printed(Sym("h", sub="1", sup="(1)", bold=True)) == \
        ("msubsup", [("mi", "𝐡", {}), ("mn", "1", {}),
                     ("mrow", [mo("(", stretchy="false"), ("mn", "1", {}), mo(")", stretchy="false")], {})], {})


def test_a_sign_is_a_prefix_in_its_own_row_and_a_difference_is_binary():
    x = Sym("x")
    assert printed(Neg(x)) == ("mrow", [SIGN, ("mi", "x", {})], {})
    matrix = Value(np.array([[Exact(1)], [Exact(2)]], dtype=object))
    out = printed(Op("-", (matrix, Const(Exact(1)))))
    assert out[0] == "mrow" and [c[0] for c in out[1]] == ["mrow", "mo", "mn"]
    assert out[1][1] == mo("−")                 # binary: no form, so the dictionary's infix spacing
    fence_open, table, fence_close = out[1][0][1]
    assert fence_open == mo("[", form="prefix", stretchy="true") and table[0] == "mtable"
    assert [len(row[1]) for row in table[1]] == [1, 1]


def test_a_negative_number_after_a_relation_keeps_its_sign_tight():
    out = printed(Op("=", (Sym("b"), Value(Exact(-1)))))
    assert out == ("mrow", [("mi", "b", {}), mo("="), ("mrow", [SIGN, ("mn", "1", {})], {})], {})


def test_function_parentheses_hug_a_number_and_stretch_around_a_fraction():
    assert printed(call("sigma", Value(Exact(0)))) == \
        ("mrow", [("mi", "σ", {}), mo("\u2061"), ("mrow", [OPEN, ("mn", "0", {}), CLOSE], {})], {})
    half = printed(call("ln", Frac(Const(Exact(1)), Const(Exact(2)))))
    assert half[1][2][1][0] == mo("(", form="prefix", stretchy="true")
    assert half[1][2][1][1] == ("mfrac", [("mn", "1", {}), ("mn", "2", {})], {})


def test_croatian_decimals_and_separators():
    p = MathMLPrinter(decimal_separator=",", lang="hr")
    assert tree(p.approx(Exact(Fraction(1, 3)))) == ("mn", "0,3333", {})
    assert tree(p.print(Seq((Sym("a"), Sym("b"))))) == [("mi", "a", {}), mo(";", separator="true"), ("mi", "b", {})]
    en = MathMLPrinter(decimal_separator=".", lang="en")
    assert tree(en.approx(Exact(Fraction(-1, 3)))) == ("mrow", [SIGN, ("mn", "0.3333", {})], {})


def test_a_row_vector_is_a_one_row_table_and_does_not_stretch():
    row = printed(Value(np.array([Exact(1), Exact(-1)], dtype=object), "row"))
    assert row[1][0] == mo("[", form="prefix", stretchy="false")
    (mtr,) = row[1][1][1]
    assert [cell[1] for cell in mtr[1]] == [[("mn", "1", {})], [("mrow", [SIGN, ("mn", "1", {})], {})]]


def test_the_api_returns_one_math_element():
    out = mathml(Frac(Sym("a"), Sym("b")), lang="hr", decimal_separator=",")
    root = ElementTree.fromstring(out)
    assert root.tag == NS + "math" and root[0].tag == NS + "mfrac"


def test_exact_logarithms_are_printed_natively():
    """2 ln 2/9 is a fraction of <mn>2</mn> ln 2 over 9, written here, not converted from LaTeX."""
    from examsolver.engine.scalar import ln_prime

    out = printed(Value(ln_prime(2) * Fraction(-2, 9)))
    assert out[0] == "mrow" and out[1][0] == SIGN
    fraction = out[1][1]
    assert fraction[0] == "mfrac" and fraction[1][1] == ("mn", "9", {})
    numerator = fraction[1][0][1]
    assert numerator[0] == ("mn", "2", {}) and numerator[-1] == ("mrow", [("mi", "ln", {}), mo("\u2061"),
                                                                          ("mn", "2", {})], {})


def test_max_is_written_max_in_every_notation():
    """Global max pooling extends average pooling; its function must not inherit the name AVG
    (the siamese hinge max(0, m − d) was printed AVG(0; m − d) in every format)."""
    from examsolver.render.math import LatexPrinter, PlainPrinter

    hinge = call("max", Const(Exact(0)), Sym("d"))
    assert PlainPrinter().print(hinge) == "max(0, d)"
    assert LatexPrinter().print(hinge) == r"\max\left(0, d\right)"
    assert printed(hinge)[1][0] == ("mi", "max", {})
    assert printed(call("avg", Sym("x")))[1][0] == ("mi", "AVG", {})


def test_closed_forms_are_printed_natively_with_parentheses_that_hug_a_number():
    """tanh(1) of an RNN state: the fences do not stretch around one digit (latex2mathml's did)."""
    from examsolver.engine.scalar import tanh

    assert printed(Value(tanh(Exact(1)))) == \
        ("mrow", [("mi", "tanh", {}), mo("\u2061"), ("mrow", [OPEN, ("mn", "1", {}), CLOSE], {})], {})
    scaled = printed(Value(tanh(Exact(Fraction(3, 5))) * Fraction(-2, 3)))
    assert scaled[1][0] == SIGN and scaled[1][1][0] == "mfrac"


def test_the_html_markup_builder_leaves_math_as_latex_for_subclasses_that_keep_tex():
    """Moodle's builder extends HtmlBuilder with TeX hooks: only the page prints nodes as MathML."""
    from examsolver.pipeline import solve_file
    from examsolver.render.html import HtmlBuilder, PageBuilder
    from examsolver.render.options import Options

    from conftest import PROBLEMS

    class TexHtml(HtmlBuilder):
        def inline(self, latex):
            return f"\\({latex}\\)"

        def equation(self, lines, number):
            return "\\[" + " \\\\ ".join(lines) + "\\]"

    solution = solve_file(PROBLEMS / "2022_z1.yaml")
    tex = TexHtml("hr", None, None, Options(), "moodle").view(solution)
    bodies = [b.body for s in tex.sections for b in s.blocks] + tex.given + tex.conventions
    assert bodies and not any("<math" in b for b in bodies) and any("\\frac" in b for b in bodies)
    page = PageBuilder("hr", None, None, Options(), "html").view(solution)
    steps = [b.body for s in page.sections for b in s.blocks if b.kind == "equation"]
    assert steps and all("<math" in b and "\\frac" not in b for b in steps)
