"""Formulas of hypothesis files, parsed without evaluating their text.

Hypothesis files are what researchers exchange, so their text is data. ``sympy.parse_expr`` evaluates its input
(attribute chains on literals such as ``().__class__.__bases__[0].__subclasses__()`` reach ``os.system``, and
``9**9**9**9`` never returns). This module instead parses with ``ast.parse(text, mode="eval")`` and builds the
sympy expression node by node from an allow-list:

- names (identifiers that do not start with ``_``) become plain ``sympy.Symbol``\\ s (so ``E``, ``I`` or ``Q`` are
  never sympy built-ins); ``pi`` is the constant π;
- int and float literals; the binary operators ``+ - * / **``; unary ``-`` and ``+``;
- calls, by name and with positional arguments, of the functions in :data:`FUNCTIONS`.

Anything else (attributes, subscripts, lambdas, comprehensions, strings, f-strings, comparisons, boolean
operators, keywords, ``:=`` ...) raises :class:`ExpressionError` naming the construct. The work is bounded before
any number is computed: the text has at most :data:`MAX_LENGTH` characters, the syntax tree at most
:data:`MAX_NODES` nodes and :data:`MAX_DEPTH` levels; integer literals have at most :data:`MAX_DIGITS` digits; a
numeric exponent is a plain number of magnitude at most :data:`MAX_EXPONENT` and contains no power (no towers);
every sub-expression without names is first evaluated in float arithmetic and must be a finite real number, and
its exact value may not exceed :data:`MAX_DIGITS` digits. Function calls and roots of numbers are built
unevaluated (``evaluate=False``): sympy's argument collapsing in ``Min``/``Max``, its special values of
trigonometric functions and its factoring of numbers under roots cost milliseconds per call. A hostile formula
is thus refused (or parsed) in milliseconds.

Example:
    >>> parse_formula("a + b*log(width)**2")
    a + b*log(width)**2
    >>> parse_equation("test_error = a + b/p_test")
    ('test_error', a + b/p_test)
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import sympy

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "ExpressionError",
    "parse_equation",
    "parse_formula",
]

MAX_LENGTH = 1000  #: characters of one formula
MAX_NODES = 256  #: nodes of its Python syntax tree
MAX_DEPTH = 32  #: nesting levels of that tree
MAX_DIGITS = 30  #: decimal digits of an integer literal, and of the exact value of any numeric sub-expression
MAX_EXPONENT = 100  #: largest magnitude of a numeric exponent


@dataclass(frozen=True)
class _Function:
    sympy: Callable[..., sympy.Expr]
    real: Callable[..., float]
    arity: range


def _unevaluated(function: type[sympy.Function]) -> Callable[..., sympy.Expr]:
    return lambda *args: function(*args, evaluate=False)


def _log(x: sympy.Expr, base: sympy.Expr | None = None) -> sympy.Expr:
    """``log(x)`` or ``log(x)/log(base)`` (a two-argument sympy ``log`` would print as numpy's ``log(x, out)``)."""
    out = sympy.log(x, evaluate=False)
    return out if base is None else out / sympy.log(base, evaluate=False)


#: callable names -> their sympy builder (unevaluated), float twin and allowed numbers of arguments
FUNCTIONS: dict[str, _Function] = {
    "log": _Function(_log, math.log, range(1, 3)),
    "exp": _Function(_unevaluated(sympy.exp), math.exp, range(1, 2)),
    "sqrt": _Function(lambda x: sympy.sqrt(x, evaluate=False), math.sqrt, range(1, 2)),
    "sin": _Function(_unevaluated(sympy.sin), math.sin, range(1, 2)),
    "cos": _Function(_unevaluated(sympy.cos), math.cos, range(1, 2)),
    "tanh": _Function(_unevaluated(sympy.tanh), math.tanh, range(1, 2)),
    "Abs": _Function(_unevaluated(sympy.Abs), abs, range(1, 2)),
    "Min": _Function(_unevaluated(sympy.Min), min, range(1, 9)),
    "Max": _Function(_unevaluated(sympy.Max), max, range(1, 9)),
}
#: names that denote constants rather than symbols
CONSTANTS: dict[str, tuple[sympy.Expr, float]] = {"pi": (sympy.pi, math.pi)}

_BINARY: dict[type[ast.operator], Callable[[object, object], object]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[object], object]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Slice: "slice",
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Starred: "starred argument",
    ast.NamedExpr: "assignment expression (:=)",
    ast.BoolOp: "boolean operator",
    ast.Compare: "comparison",
    ast.IfExp: "conditional expression",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.FloorDiv: "floor division //",
    ast.Mod: "modulo %",
    ast.MatMult: "matrix product @",
    ast.BitXor: "bitwise xor ^ (write a power as **)",
    ast.BitAnd: "bitwise and &",
    ast.BitOr: "bitwise or |",
    ast.LShift: "shift <<",
    ast.RShift: "shift >>",
    ast.Not: "boolean not",
    ast.Invert: "bitwise not ~",
}
ALLOWED = "allowed: names, int and float numbers, + - * / **, unary - and +, and calls of " + ", ".join(
    sorted(FUNCTIONS, key=str.lower)
)


class ExpressionError(ValueError):
    """A formula outside the allowed grammar or its bounds. ``construct`` names the offending part (with its text),
    ``reason`` says why; the message reads ``Cannot parse the formula TEXT: CONSTRUCT: REASON``."""

    def __init__(self, text: str, construct: str, reason: str) -> None:
        self.text, self.construct, self.reason = text, construct, reason
        super().__init__(f"Cannot parse the formula {_shorten(text, 80)}: {construct}: {reason}")


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


@dataclass(frozen=True)
class _Term:
    """A built sub-expression and, when it has no names, its value in float arithmetic."""

    expr: sympy.Expr
    value: float | None


class _Builder:
    """Builds the sympy expression of one syntax tree, refusing anything outside the allow-list."""

    def __init__(self, text: str) -> None:
        self.text = text

    def refuse(self, node: ast.AST, reason: str, construct: str | None = None) -> NoReturn:
        if construct is None:
            construct = _CONSTRUCTS.get(type(node), type(node).__name__)
        segment = ast.get_source_segment(self.text, node) if hasattr(node, "lineno") else None
        raise ExpressionError(self.text, f"{construct} {_shorten(segment, 40)}" if segment else construct, reason)

    def build(self, node: ast.AST, depth: int) -> _Term:
        if depth > MAX_DEPTH:
            self.refuse(node, f"nested deeper than {MAX_DEPTH} levels", "nesting")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            term = self.build(node.operand, depth + 1)
            op = _UNARY[type(node.op)]
            return self.checked(node, op(term.expr), None if term.value is None else op(term.value))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self.binary(node, self.build(node.left, depth + 1), self.build(node.right, depth + 1))
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.UnaryOp | ast.BinOp):
            self.refuse(node, f"not allowed ({ALLOWED})", _CONSTRUCTS.get(type(node.op), type(node.op).__name__))
        self.refuse(node, f"not allowed ({ALLOWED})")

    def constant(self, node: ast.Constant) -> _Term:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "boolean" if isinstance(value, bool) else type(value).__name__
            self.refuse(node, f"not allowed ({ALLOWED})", f"{kind} literal")
        if isinstance(value, int):
            if abs(value) >= 10**MAX_DIGITS:
                self.refuse(node, f"more than {MAX_DIGITS} digits", "integer literal")
            return _Term(sympy.Integer(value), float(value))
        if not math.isfinite(value):
            self.refuse(node, "beyond the float range", "float literal")
        return _Term(sympy.Float(value), value)

    def name(self, node: ast.Name) -> _Term:
        if node.id.startswith("_"):
            self.refuse(node, "names may not start with '_'", "name")
        if node.id in FUNCTIONS:
            self.refuse(node, f"a function, to be called as {node.id}(...)", "name")
        if node.id in CONSTANTS:
            return _Term(*CONSTANTS[node.id])
        return _Term(sympy.Symbol(node.id), None)

    def binary(self, node: ast.BinOp, left: _Term, right: _Term) -> _Term:
        op = _BINARY[type(node.op)]
        if isinstance(node.op, ast.Pow) and right.value is not None:
            if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) for n in ast.walk(node.right)):
                self.refuse(node, "a numeric exponent may not itself contain a power", "exponent tower")
            if not (right.expr.is_Rational or right.expr.is_Float):
                self.refuse(node, "a numeric exponent must reduce to a plain number", "exponent")
            if abs(right.value) > MAX_EXPONENT:
                self.refuse(node, f"a numeric exponent must lie within ±{MAX_EXPONENT}", "exponent")
        value = None
        if left.value is not None and right.value is not None:
            value = self.real(node, op, left.value, right.value)
        if isinstance(node.op, ast.Pow) and value is not None and not right.expr.is_Integer:
            # a root of a number: sympy would factor the base to simplify it, milliseconds per number
            return self.checked(node, sympy.Pow(left.expr, right.expr, evaluate=False), value)
        return self.checked(node, op(left.expr, right.expr), value)

    def call(self, node: ast.Call, depth: int) -> _Term:
        if not isinstance(node.func, ast.Name):
            self.refuse(node, f"only functions named directly may be called ({ALLOWED})", "call of an expression")
        function = FUNCTIONS.get(node.func.id)
        if function is None:
            self.refuse(node, f"unknown function {node.func.id!r} ({ALLOWED})", "call")
        if node.keywords:
            self.refuse(node, "functions take positional arguments only", "keyword argument")
        if len(node.args) not in function.arity:
            low, high = function.arity.start, function.arity.stop - 1
            expected = str(low) if low == high else f"{low} to {high}"
            self.refuse(node, f"takes {expected} arguments, got {len(node.args)}", "call")
        args = [self.build(a, depth + 1) for a in node.args]
        value = None
        if all(a.value is not None for a in args):
            value = self.real(node, function.real, *(a.value for a in args))
        elif node.func.id == "log":  # log(x)/log(base) with one part numeric: that part must be defined
            for arg, part in zip(args, (math.log, lambda base: 1 / math.log(base)), strict=False):
                if arg.value is not None:
                    self.real(node, part, arg.value)
        return self.checked(node, function.sympy(*(a.expr for a in args)), value)

    def real(self, node: ast.AST, function: Callable[..., object], *args: float) -> float:
        """``function(*args)`` in float arithmetic: must be a finite real number."""
        try:
            value = function(*args)
        except (OverflowError, ZeroDivisionError, ValueError) as err:
            self.refuse(node, f"not a finite real number ({err})", "numeric value")
        if not isinstance(value, int | float) or not math.isfinite(value):
            self.refuse(node, f"not a finite real number (got {value!r})", "numeric value")
        return float(value)

    def checked(self, node: ast.AST, expr: sympy.Expr, value: float | None) -> _Term:
        """Refuse a result whose exact numbers exceed :data:`MAX_DIGITS` digits or whose floats overflow."""
        for part in (expr, *expr.args):
            if part.is_Rational and max(abs(part.p), part.q) >= 10**MAX_DIGITS:
                self.refuse(node, f"its exact value has more than {MAX_DIGITS} digits", "number")
            if part.is_Float and not math.isfinite(float(part)):
                self.refuse(node, "beyond the float range", "number")
        if expr.has(sympy.zoo, sympy.nan):
            self.refuse(node, "undefined (a division by zero?)", "numeric value")
        return _Term(expr, value)


def parse_formula(text: str) -> sympy.Expr:
    """Parse a right-hand side such as ``"p_train - p_test"`` into a sympy expression without evaluating the text
    (see the module docstring for the grammar and the bounds). Raises :class:`ExpressionError`."""
    if not isinstance(text, str):
        raise ExpressionError(repr(text), "formula", f"expected a string, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError(text, "formula", "empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(text, "text", f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as err:  # ValueError: null bytes, on some Python versions
        offset = getattr(err, "offset", None)
        reason = (getattr(err, "msg", None) or str(err)) + (f" at column {offset}" if offset else "")
        raise ExpressionError(text, "syntax", reason) from None
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > MAX_NODES:
        raise ExpressionError(text, "size", f"{n_nodes} syntax nodes, more than {MAX_NODES}")
    return _Builder(text.strip()).build(tree.body, 0).expr


def _equals_signs(text: str) -> list[int]:
    """Positions of the ``=`` signs outside brackets that are not part of ``==``, ``<=``, ``>=``, ``!=`` or ``:=``."""
    depth, out = 0, []
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if (
            char == "="
            and depth == 0
            and text[i - 1 : i] not in ("=", "<", ">", "!", ":")
            and text[i + 1 : i + 2] != "="
        ):
            out.append(i)
    return out


def parse_equation(text: str) -> tuple[str, sympy.Expr]:
    """Parse ``"target = rhs"`` (e.g. ``"t_grok = k*log(alpha)/wd"``): split on the one ``=`` sign outside brackets
    (``target = rhs`` is not a Python expression); the target must be a single name, the rhs a formula for
    :func:`parse_formula`. Returns ``(target, rhs)``; raises :class:`ExpressionError`."""
    if not isinstance(text, str):
        raise ExpressionError(repr(text), "equation", f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(text, "text", f"longer than {MAX_LENGTH} characters")
    signs = _equals_signs(text)
    if len(signs) != 1:
        raise ExpressionError(text, "equation", f"must read 'target = rhs' with one '=', found {len(signs)}")
    target, rhs = text[: signs[0]].strip(), text[signs[0] + 1 :]
    if not (target.isidentifier() and target.isascii()) or target.startswith("_"):
        raise ExpressionError(text, f"target {target!r}", "must be a single column name not starting with '_'")
    return target, parse_formula(rhs)
