"""Lint for tests that cannot fail: a comparison evaluated and thrown away.

`np.testing.assert_allclose(a, b) and d.k_flops == 6.0` checks nothing after
the `and` (assert_allclose returns None), and a bare `x == y` statement checks
nothing at all. ruff's bugbear rules catch the bare comparison (B015) but not
a comparison inside a boolean expression whose other operand is a call, so
this test walks every test module's syntax tree for expression statements that
are, or contain at the top level of a boolean expression, a comparison.
"""

import ast
import pathlib

TESTS = pathlib.Path(__file__).parent


def _discarded_comparisons(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Expr):
            continue
        value = node.value
        operands = value.values if isinstance(value, ast.BoolOp) else [value]
        if any(isinstance(op, ast.Compare) for op in operands):
            yield node.lineno


def test_detector_catches_the_known_pattern():
    src = "def t():\n    f(1) and d.k == 6.0\n    x == 1\n    assert x == 1\n    y = a == b\n"
    assert list(_discarded_comparisons(ast.parse(src))) == [2, 3]


def test_no_test_discards_a_comparison():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [
            f"{path.relative_to(TESTS.parent)}:{line}" for line in _discarded_comparisons(tree)
        ]
    assert not found, (
        "these lines compute a comparison and discard it (write `assert ...`): " + ", ".join(found)
    )
