"""Secret comparisons are constant time (a structural check, no timing measurements).

Every function that checks a caller-supplied credential against a secret
must do so with ``hmac.compare_digest`` and never with ``==``/``!=``/``in``
on the secret-derived values, which return early at the first difference.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from dialer.core import tokens
from dialer.receiver import app as receiver_app
from dialer.store import apikeys

# Where a presented credential meets the expected one: each must use compare_digest.
COMPARERS: list[Callable[..., Any]] = [tokens._same, apikeys.is_bootstrap]
# Every function on a credential's path: none may compare secret values with ==.
CHECKERS: list[Callable[..., Any]] = [
    *COMPARERS,
    tokens.verify_callback,
    tokens.verify_stream_token,
    receiver_app.auth_middleware,
    receiver_app.key_scope,
]
# Names that hold a credential or a MAC in those functions.
SENSITIVE = {"sig", "token", "mac", "expected", "given", "secret", "digest"}


def _tree(fn: Callable[..., Any]) -> ast.AST:
    fn = inspect.unwrap(fn)
    return ast.parse(textwrap.dedent(inspect.getsource(fn)))


def _is_compare_digest(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (
        isinstance(f, ast.Attribute)
        and f.attr == "compare_digest"
        and isinstance(f.value, ast.Name)
        and f.value.id in {"hmac", "secrets"}
    )


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


@pytest.mark.parametrize("fn", COMPARERS, ids=lambda f: f.__qualname__)
def test_credential_checks_use_compare_digest(fn: Callable[..., Any]) -> None:
    tree = _tree(fn)
    assert any(_is_compare_digest(n) for n in ast.walk(tree)), fn.__qualname__


@pytest.mark.parametrize("fn", CHECKERS, ids=lambda f: f.__qualname__)
def test_no_short_circuit_comparison_of_secret_values(fn: Callable[..., Any]) -> None:
    for node in ast.walk(_tree(fn)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        # Comparing with a constant (length, a literal) leaks nothing about the secret.
        if any(isinstance(o, ast.Constant) for o in operands) or any(
            isinstance(o, ast.Call) and getattr(o.func, "id", "") == "len" for o in operands
        ):
            continue
        risky = _names(node) & SENSITIVE
        assert not risky, (fn.__qualname__, ast.unparse(node))


def test_the_module_sources_name_compare_digest() -> None:
    """The cheap grep the issue asks for, on the two modules that check credentials."""
    for module in (tokens, apikeys):
        assert "hmac.compare_digest" in inspect.getsource(module), module.__name__
