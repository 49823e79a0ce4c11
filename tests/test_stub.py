"""python/nndl_fast/_core.pyi describes the compiled module: every public function and class of
_core is in the stub with the same parameter names, and the stub has nothing else.
Regenerate it with `python tools/gen_stub.py`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from nndl_fast import _core

STUB = Path(__file__).resolve().parent.parent / "python" / "nndl_fast" / "_core.pyi"
FIX = "regenerate the stub: python tools/gen_stub.py"


def split_top_level(params: str) -> list[str]:
    """Split a parameter list at the commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in params:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def param_names(signature: str) -> tuple[str, ...]:
    """'f(a: int, /, b: list[int] = [1, 2], *, c: str) -> None' -> ('a', '/', 'b', '*', 'c')."""
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    return tuple(re.split(r"[:=]", p, maxsplit=1)[0].strip() for p in split_top_level(inner))


def compiled_signatures(obj: object, name: str) -> set[tuple[str, ...]]:
    """Parameter names of each overload, from the signature lines pybind11 writes at the top of
    a function's docstring (pybind11 functions have no __text_signature__)."""
    doc = obj.__doc__ or ""
    lines = doc.splitlines()
    if len(lines) > 1 and lines[1].strip() == "Overloaded function.":
        heads = [m.group(1) for m in re.finditer(rf"^\d+\. ({re.escape(name)}\(.*)$", doc, flags=re.M)]
    else:
        heads = lines[:1]
    assert heads and heads[0].startswith(name + "("), f"{name}: no pybind11 signature in its docstring: {doc!r}"
    return {param_names(h.split(" -> ")[0] if ") -> " in h else h) for h in heads}


def stub_params(fn: ast.FunctionDef) -> tuple[str, ...]:
    a = fn.args
    out = [x.arg for x in a.posonlyargs] + (["/"] if a.posonlyargs else []) + [x.arg for x in a.args]
    if a.vararg:
        out.append("*" + a.vararg.arg)
    elif a.kwonlyargs:
        out.append("*")
    out += [x.arg for x in a.kwonlyargs]
    if a.kwarg:
        out.append("**" + a.kwarg.arg)
    return tuple(out)


def stub_defs(body: list[ast.stmt]) -> dict[str, set[tuple[str, ...]] | dict]:
    """name -> set of parameter-name tuples (overloads included) for functions, or the same
    mapping of the class body for classes; annotated attributes map to an empty set."""
    out: dict[str, set[tuple[str, ...]] | dict] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            sigs = out.setdefault(node.name, set())
            assert isinstance(sigs, set)
            sigs.add(stub_params(node))
        elif isinstance(node, ast.ClassDef):
            out[node.name] = stub_defs(node.body)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = set()
    return out


def is_public(name: str) -> bool:
    return not name.startswith("_") or name == "__init__"


def compiled_defs(ns: object, names: list[str]) -> dict[str, set[tuple[str, ...]] | dict]:
    out: dict[str, set[tuple[str, ...]] | dict] = {}
    for name in names:
        obj = getattr(ns, name)
        if isinstance(obj, type):
            members = [n for n in vars(obj) if is_public(n)]
            out[name] = compiled_defs(obj, members)
        elif callable(obj) or isinstance(obj, (staticmethod, classmethod)):
            fn = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
            out[name] = compiled_signatures(fn, name)
        elif not isinstance(obj, type(_core)):  # a value (constant, property): named in the stub
            out[name] = set()
    return out


@pytest.fixture(scope="module")
def stub() -> dict:
    tree = ast.parse(STUB.read_text())
    return stub_defs(tree.body)


@pytest.fixture(scope="module")
def compiled() -> dict:
    return compiled_defs(_core, [n for n in dir(_core) if not n.startswith("_")])


def test_stub_names_exactly_the_public_members(stub, compiled):
    stub_names = {n for n in stub if not n.startswith("__")}
    missing, extra = sorted(set(compiled) - stub_names), sorted(stub_names - set(compiled))
    assert not missing and not extra, f"missing from the stub: {missing}; in the stub only: {extra}; {FIX}"


def test_stub_all_lists_the_public_members(compiled):
    tree = ast.parse(STUB.read_text())
    listed = next(
        (
            ast.literal_eval(n.value)
            for n in tree.body
            if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "__all__" and n.value
        ),
        None,
    )
    assert listed is not None and sorted(listed) == sorted(compiled), FIX


def test_stub_parameters_match(stub, compiled):
    def diff(want: dict, got: dict, prefix: str) -> list[str]:
        out = []
        for name, sigs in want.items():
            if name not in got:
                continue  # reported by test_stub_names_exactly_the_public_members
            if isinstance(sigs, dict):
                have = got[name] if isinstance(got[name], dict) else {}
                out += [f"{prefix}{name}: missing {m}" for m in sorted(set(sigs) - set(have))]
                out += [f"{prefix}{name}: extra {m}" for m in sorted(set(have) - set(sigs))]
                out += diff(sigs, have, f"{prefix}{name}.")
            elif sigs != got[name]:
                out.append(f"{prefix}{name}: compiled {sorted(sigs)}, stub {sorted(got[name])}")
        return out

    mismatches = diff(compiled, stub, "")
    assert not mismatches, "\n".join(mismatches) + "\n" + FIX


def test_signature_parsing():
    """The parser this test relies on: nested brackets, quoted commas, markers, overloads."""
    sig = (
        "f(a: typing.Annotated[list[int], 'FixedSize(4)'], /, b: dict[str, int] = {'x,y': 1}, *, c: str = ')') -> None"
    )
    assert param_names(sig) == ("a", "/", "b", "*", "c")
    assert param_names("g() -> int") == ()
    assert param_names("h(*args, **kwargs)") == ("*args", "**kwargs")

    class Overloaded:
        __doc__ = "k(*args, **kwargs)\nOverloaded function.\n\n1. k(x: int) -> int\n\n2. k(x: str, y: str) -> str\n"

    assert compiled_signatures(Overloaded, "k") == {("x",), ("x", "y")}
    tree = ast.parse("def f(a, /, b, *, c): ...\ndef g(*args, **kw): ...\nclass C:\n    def m(self, x): ...\n")
    assert stub_defs(tree.body) == {
        "f": {("a", "/", "b", "*", "c")},
        "g": {("*args", "**kw")},
        "C": {"m": {("self", "x")}},
    }
