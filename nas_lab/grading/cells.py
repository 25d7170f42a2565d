"""A submission's code cells: as plain Python, and which of them the answers need.

The grader runs first only the cells that define the answers and, transitively, every name those
cells read (:func:`needed_cells`); heavy cells that define nothing the answers need are left out.
The names a cell defines and reads come from its syntax tree, function and class bodies included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable


def python_source(source: str) -> str:
    """A cell as plain Python: IPython magics and shell lines become calls of `get_ipython()`."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001  leave it as it is: the child will report the syntax error
        return source


def names_of(source: str) -> tuple[set[str], set[str]] | None:
    """The names a cell defines and the names it reads from the notebook's namespace.

    None for a cell that does not parse: it is run anyway, so that its error is reported."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    defined: set[str] = set()
    used: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            if not isinstance(node, ast.Lambda):
                defined.add(node.name)
            inner, free = _scope(node)
            used |= free
            defined |= inner  # `global x` in a body defines x for the notebook
            continue
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else used).add(node.id)
        elif isinstance(node, ast.alias):
            defined.add((node.asname or node.name).split(".")[0])
        todo.extend(ast.iter_child_nodes(node))
    return defined, used


def _scope(node: ast.AST) -> tuple[set[str], set[str]]:
    """A body's global declarations, and the names it reads that it does not bind itself."""
    declared = {g for n in ast.walk(node) if isinstance(n, ast.Global) for g in n.names}
    bound = {a.arg for n in ast.walk(node) if isinstance(n, ast.arguments) for a in _args(n)}
    loads = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.alias):
            bound.add((n.asname or n.name).split(".")[0])
    return declared, loads - (bound - declared)


def _args(arguments: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return arguments.posonlyargs + arguments.args + arguments.kwonlyargs + extra


def needed_cells(cells: list[tuple[int, str]], wanted: Iterable[str]) -> list[tuple[int, str]]:
    """The cells that define the answers, and (transitively) every name those cells read.

    Every cell defining a needed name is kept, so the last definition still wins, as it would
    in a run of the whole notebook; heavy cells that define nothing the answers need are left."""
    parsed = {i: names_of(source) for i, source in cells}
    keep = {i for i, names in parsed.items() if names is None}
    parsed = {i: names for i, names in parsed.items() if names is not None}
    wanted = set(wanted)
    while True:
        more = {i for i, (defined, _) in parsed.items() if i not in keep and defined & wanted}
        if not more:
            return [(i, source) for i, source in cells if i in keep]
        keep |= more
        for i in more:
            wanted |= parsed[i][1]
