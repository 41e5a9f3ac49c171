"""Hostile formulas for hypothesis files, each with the construct the refusal must name.

Shared by ``tests/bridge/test_expressions.py`` (each is refused with :class:`bridge.expressions.ExpressionError`
and creates no file) and ``benchmarks/expression_attacks.py`` (each refusal's time). The code-execution attacks
try to create a file ``pwned`` in the working directory. The first one created it through ``sympy.parse_expr``
before ``bridge.expressions`` existed (issue 10: attribute chains on literals reach ``os.system``).
"""

from __future__ import annotations

PWNED = "pwned"
_SYSTEM = f"__import__('os').system('touch {PWNED}')"
_CHAIN = (
    "[c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == 'catch_warnings'][0]()"
    f"._module.__builtins__['__import__']('os').system('touch {PWNED}') + x"
)

#: (id, formula, fragment of the construct named in the error)
ATTACKS: list[tuple[str, str, str]] = [
    ("subclasses-chain", _CHAIN, "call of an expression"),
    ("subclasses", "().__class__.__bases__[0].__subclasses__()", "call of an expression"),
    ("import-system", _SYSTEM, "call of an expression"),
    ("import-system-in-sum", f"a + b*{_SYSTEM}", "call of an expression"),
    ("lambda", f"(lambda: {_SYSTEM})()", "call of an expression"),
    ("bare-lambda", "lambda: 0", "lambda"),
    ("list-comprehension", f"[{_SYSTEM} for c in 'a']", "list comprehension"),
    ("set-comprehension", "{c for c in x}", "set comprehension"),
    ("dict-comprehension", "{c: 1 for c in x}", "dict comprehension"),
    ("generator", "sum(c for c in x)", "call"),
    ("generator-in-known-function", "log(c for c in x)", "generator expression"),
    ("subscript", "x[0]", "subscript"),
    ("dunder-attribute", "x.__class__", "attribute access"),
    ("dunder-globals", "log.__globals__", "attribute access"),
    ("attribute-of-literal", "(1).__class__.__mro__", "attribute access"),
    ("f-string", f'f"{{{_SYSTEM}}}"', "f-string"),
    ("open", f"open('{PWNED}', 'w')", "call"),
    ("exec", f'exec("{_SYSTEM}")', "call"),
    ("eval", "eval('1')", "call"),
    ("getattr", "getattr(x, '__class__')", "call"),
    ("sympy-class", "Symbol('x')", "call"),
    ("dunder-name", "__builtins__", "name"),
    ("underscore-name", "_x + 1", "name"),
    ("bare-function", "log + 1", "name"),
    ("starred", "log(*x)", "starred argument"),
    ("double-starred", "log(**x)", "keyword argument"),
    ("keyword", "log(x, base=2)", "keyword argument"),
    ("walrus", "(y := 1) + y", "assignment expression"),
    ("conditional", "a if b else c", "conditional expression"),
    ("boolean", "a and b", "boolean operator"),
    ("not", "not a", "boolean not"),
    ("comparison", "a < b", "comparison"),
    ("string", "'os'", "str literal"),
    ("bytes", "b'os'", "bytes literal"),
    ("complex", "1j*x", "complex literal"),
    ("bool", "True + x", "boolean literal"),
    ("none", "None", "NoneType literal"),
    ("ellipsis", "...", "ellipsis literal"),
    ("tuple", "(x, y)", "tuple"),
    ("list", "[x]", "list"),
    ("dict", "{x: y}", "dict"),
    ("xor", "x^2", "bitwise xor"),
    ("floor-division", "x // 2", "floor division"),
    ("modulo", "x % 2", "modulo"),
    ("matmul", "x @ y", "matrix product"),
    ("invert", "~x", "bitwise not"),
    ("tower-9", "9**9**9**9", "exponent tower"),
    ("tower-in-sum", "a + 9**9**9**9", "exponent tower"),
    ("tower-2", "2**10**10", "exponent tower"),
    ("tower-symbolic-base", "x**(2**3)", "exponent tower"),
    ("big-exponent", "2**1000000", "exponent"),
    ("big-symbolic-exponent", "x**1000", "exponent"),
    ("nested-power", "((9**10)**10)**10", "number"),
    ("power-overflow", "(9**29)**99", "numeric value"),
    ("exp-overflow", "exp(exp(exp(exp(9))))", "numeric value"),
    ("float-overflow", "1e308*10", "numeric value"),
    ("float-literal", "1e999", "float literal"),
    ("huge-integer-literal", "1" * 200, "integer literal"),
    ("big-coefficient", "x*10**29*10**29", "number"),
    ("division-by-zero", "1/0", "numeric value"),
    ("symbolic-division-by-zero", "x/(1 - 1)", "numeric value"),
    ("deep-nesting", "Abs(" * 40 + "x" + ")" * 40, "nesting"),
    ("deep-unary", "-" * 200 + "x", "size"),
    ("deep-parentheses", "(" * 300 + "x" + ")" * 300, "syntax"),
    ("many-nodes", "+".join(f"x{i}" for i in range(200)), "size"),
    ("100-kB", "x+" * 50_000 + "x", "text"),
    ("10-MB", "9" * 10_000_000, "text"),
    ("null-byte", "x\x00y", "syntax"),
    ("arity", "log(x, y, z)", "call"),
    ("syntax", "x = = 1", "syntax"),
]

_PRIMES = [10**28 + d for d in (331, 457, 641, 673, 753, 793, 799, 897, 1051, 1071, 1113, 1131, 1339, 1411, 1441)]
#: (id, formula): allowed formulas that make sympy work hardest within the bounds; they parse, in milliseconds
HEAVY: list[tuple[str, str]] = [
    ("roots-of-30-digit-numbers", "+".join(f"sqrt({p})" for p in _PRIMES[:15]) + "+x"),
    ("fractional-powers", "+".join(f"{p}**(1/3)" for p in _PRIMES[:15]) + "+x"),
    (
        "product-of-roots",
        "*".join(f"{p}**(1/3)" for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)) + "*x",
    ),
    ("nested-min-max", "Max(" + ",".join(f"Min({','.join(f'x{i}{j}' for j in range(8))})" for i in range(7)) + ")"),
    ("alternating-min-max", "".join(f"Max(x{i},Min(y{i}," for i in range(15)) + "z" + "))" * 15),
    ("logs-with-bases", "+".join(f"log({100003 + 2 * i},{100391 + 2 * i})" for i in range(30))),
    ("trig-of-rational-pi", "+".join(f"sin({i}*pi/{97 + i})+cos({i}*pi/{89 + i})" for i in range(1, 10))),
    ("deep-allowed", "Abs(" * 31 + "x" + ")" * 31),
    ("big-symbolic-power", "+".join(f"(x{i}+{i})**100" for i in range(20))),
]
