"""acelib's modules import one another one way (no cycle anywhere), the curriculum's layers point down
(learnability ← buffer ← sampler ← curriculum), and its configs load without numpy/pandas (review D34)."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / "acelib").rglob("*.py")}


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) of every absolute `from acelib… import name` and `import acelib…` (TYPE_CHECKING included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("acelib"):
            out += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.startswith("acelib")]
    return out


def import_graph() -> dict[str, set[str]]:
    """module → modules it imports. `from pkg import name` points at pkg.name when that is a module, else at the
    module pkg/__init__.py takes `name` from (a package's face is not a node: it only re-exports)."""
    mods = _modules()

    def resolve(module: str, name: str | None, seen: frozenset = frozenset()) -> str | None:
        if name and f"{module}.{name}" in mods:
            return f"{module}.{name}"
        if module in mods:
            return module
        face = f"{module}.__init__"
        if name and face in mods and face not in seen:
            for m, n in _imports(mods[face]):
                if n == name:
                    return resolve(m, n, seen | {face})
        return None  # a subpackage, or a name the face defines itself

    return {m: {t for mod, name in _imports(p) if (t := resolve(mod, name)) and t != m}
            for m, p in mods.items() if not m.endswith("__init__")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_acelib_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_curriculum_layers_point_down():
    g = import_graph()
    cur = {m for m in g if m.startswith("acelib.curriculum.")}
    below = {"acelib.curriculum.learnability": {"acelib.curriculum.config"},
             "acelib.curriculum.buffer": {"acelib.curriculum.config", "acelib.curriculum.learnability"},
             "acelib.curriculum.sampler": {"acelib.curriculum.config", "acelib.curriculum.learnability",
                                           "acelib.curriculum.buffer"}}
    for module, allowed in below.items():
        assert g[module] & cur <= allowed, f"{module} imports {sorted(g[module] & cur - allowed)}"


def test_curriculum_config_imports_without_numpy_or_pandas():
    code = ("import sys; import acelib.curriculum.config; "
            "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
