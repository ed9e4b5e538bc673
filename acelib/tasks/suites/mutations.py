"""Realistic bugs injected into a working compact baseline: the debug tasks of the curriculum.

`mutations(id)` lists every mutation of the competition's compact baseline (`compact_baseline(id)`), each a pure,
deterministic text transform whose undoing is the fix (the fix is the compact baseline). Kinds (`KINDS`):

- `file_name`      a wrong input or output path ("../input/train.csv", "input/training.csv", ".jpg" images,
                   "submission.csv" outside ./submission/)
- `column_name`    a wrong column in a `train[...]` / `test[...]` subscript or a column list (KeyError)
- `missing_import` one import line removed (NameError)
- `makedirs`       `os.makedirs("submission")` without `exist_ok=True`: FileExistsError, because the sandbox
                   creates ./submission/ before the run (so a *deleted* makedirs would break nothing there)
- `header`         a wrong submission header: a misnamed id or target column, the index written as an extra
                   column (where the grader rejects extra columns), or no header row
- `shape`          a wrong output shape: predictions of the hold-out rows, both probability columns, train ids
- `typo`           a misspelt variable or attribute at one use (NameError / AttributeError)
- `misplaced_line` a line moved above the definition of a name it uses, or the fit moved below the first
                   prediction (NameError / NotFittedError)

Every mutation must break the script (no valid submission); `tests/integration/test_suites.py` runs a sample
in the sandbox. **Train/eval split**: a mutation belongs to `eval` when the sha256 of its competition id, kind and
mutated code is 0 modulo 4 (`EVAL_MODULUS`), else to `train`; the split is a function of the mutation alone
(not of a seed), so the two sets are disjoint for every sampling seed. `sample(...)` draws from one split,
deterministically by seed.
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import hashlib
import random
import re
from collections.abc import Callable, Iterable

from acelib.tasks.suites.base import Spec

KINDS = ("file_name", "column_name", "missing_import", "makedirs", "header", "shape", "typo", "misplaced_line")
SPLITS = ("train", "eval")
EVAL_MODULUS = 4  # one mutation in four is held out for evaluation


@dataclasses.dataclass(frozen=True)
class Mutation:
    competition_id: str
    kind: str          # one of KINDS
    description: str   # what was changed, e.g. 'input/train.csv -> ../input/train.csv' (never shown to the agent)
    code: str          # the broken script
    fix: str           # the working script it came from (the compact baseline)

    @property
    def key(self) -> str:
        """Stable id of the mutation (sha256 of competition, kind and broken code)."""
        return hashlib.sha256(f"{self.competition_id}\0{self.kind}\0{self.code}".encode()).hexdigest()[:16]

    @property
    def split(self) -> str:
        return "eval" if int(self.key, 16) % EVAL_MODULUS == 0 else "train"


Variant = tuple[str, str]   # (description, mutated code)


# --- helpers --------------------------------------------------------------------------------------------------

def _sub_once(code: str, old: str, new: str, start: int) -> str:
    return code[:start] + new + code[start + len(old):]


def _literal_variants(code: str, pattern: str, variants: Callable[[str], Iterable[str]]) -> list[Variant]:
    """Replace the text of each match of `pattern` (group 1) by each of its variants, one occurrence at a time."""
    out = []
    for m in re.finditer(pattern, code):
        for new in variants(m.group(1)):
            if new != m.group(1):
                out.append((f"{m.group(1)} -> {new}", _sub_once(code, m.group(1), new, m.start(1))))
    return out


def _misspell(name: str) -> list[str]:
    """Typos of an identifier: two inner letters swapped, one letter dropped; a case flip for 1-2 letter names."""
    if len(name) <= 2:
        return [name.swapcase()]
    inner = [k for k in range(1, len(name) - 2) if name[k] != name[k + 1] and name[k].isalpha()
             and name[k + 1].isalpha()]
    swapped = [name[:k] + name[k + 1] + name[k] + name[k + 2:] for k in inner[:1]]
    dropped = [name[:k] + name[k + 1:] for k in range(len(name) - 1, 0, -1) if name[k].isalpha()][:1]
    return swapped + dropped


def _lines(code: str) -> list[str]:
    return code.splitlines(keepends=True)


def _module_names(tree: ast.Module) -> dict[str, int]:
    """Names bound at module level -> index of the first top-level statement that binds them."""
    bound: dict[str, int] = {}
    for i, stmt in enumerate(tree.body):
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            bound.setdefault(stmt.name, i)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for a in stmt.names:
                bound.setdefault((a.asname or a.name).split(".")[0], i)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        bound.setdefault(n.id, i)
    return bound


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


# --- the kinds ------------------------------------------------------------------------------------------------

def _file_name(code: str, spec: Spec) -> list[Variant]:
    def inputs(path: str) -> list[str]:
        renamed = re.sub(r"(train|test|labels)(\.csv|/)", lambda m: {
            "train": "training", "test": "testing", "labels": "train_labels"}[m.group(1)] + m.group(2), path, 1)
        return ["../" + path, path.removeprefix("input/"), renamed, path.replace(".png", ".jpg")]

    def output(path: str) -> list[str]:
        return ["submission.csv", "submission/predictions.csv"]
    return (_literal_variants(code, r'"(input/[^"]*)"', inputs)
            + _literal_variants(code, r'to_csv\("(submission/submission\.csv)"', output))


def _column_name(code: str, spec: Spec) -> list[Variant]:
    known = {spec.id_column, *spec.target_columns, *([spec.label] if spec.label else [])}

    def wrong(col: str) -> list[str]:
        cands = [col.lower() if col != col.lower() else col.capitalize(), col + "s" if not col.endswith("s")
                 else col[:-1], "target" if col != spec.id_column else "ID"]
        return [c for c in dict.fromkeys(cands) if c not in known and c != col]
    # subscripts of a data frame, and the elements of a column list (`targets = [...]`, `columns = [...]`)
    out = _literal_variants(code, r'\b(?:train|test)\["([^"]+)"\]', wrong)
    for m in re.finditer(r'^(?:targets|columns) = \[(.*)\]$', code, re.MULTILINE):
        for c in re.finditer(r'"([^"]+)"', m.group(1)):
            for new in wrong(c.group(1))[:1]:
                start = m.start(1) + c.start(1)
                out.append((f"{c.group(1)} -> {new} (in a column list)", _sub_once(code, c.group(1), new, start)))
    return out


def _missing_import(code: str, spec: Spec) -> list[Variant]:
    lines = _lines(code)
    return [(f"removed `{line.strip()}`", "".join(lines[:k] + lines[k + 1:]))
            for k, line in enumerate(lines) if re.match(r"(import|from) \S", line)]


def _makedirs(code: str, spec: Spec) -> list[Variant]:
    old = 'os.makedirs("submission", exist_ok=True)'
    return [("makedirs without exist_ok", code.replace(old, 'os.makedirs("submission")', 1))] if old in code else []


def _header(code: str, spec: Spec) -> list[Variant]:
    out = []
    sub = re.search(r"^submission = .*$", code, re.MULTILINE)
    for col in (spec.id_column, *spec.target_columns):
        # the column's name where the submission is built: a dict key or the insert() of the id column
        for m in re.finditer(rf'(?:\{{|, )"({re.escape(col)})": |insert\(0, "({re.escape(col)})"', code):
            g = 1 if m.group(1) else 2
            if m.start(g) >= sub.start():
                new = "prediction" if col != spec.id_column else ("ID" if col != "ID" else "Id")
                out.append((f"submission column {col} -> {new}", _sub_once(code, col, new, m.start(g))))
    # unnamed columns are 0..k-1, which are the right names when the classes are the digits 0..k-1
    if 'columns=model.classes_' in code and list(spec.target_columns) != [str(k) for k in
                                                                         range(len(spec.target_columns))]:
        out.append(("class columns unnamed", code.replace(", columns=model.classes_", "", 1)))
    if not spec.rules.get("allow_extra_columns"):
        out.append(("index written as a column", code.replace(", index=False)", ")", 1)))
    out.append(("no header row", code.replace(", index=False)", ", index=False, header=False)", 1)))
    return out


def _shape(code: str, spec: Spec) -> list[Variant]:
    out = []
    sub = re.search(r"^submission = .*$", code, re.MULTILINE)  # where the submission is built
    line = sub.group(0)
    if "(X_test)" in line:
        out.append(("predicts the hold-out rows", code.replace(line, line.replace("(X_test)", "(X_va)"), 1)))
    if "(X_test)[:, 1]" in line:
        out.append(("both probability columns", code.replace(line, line.replace("(X_test)[:, 1]", "(X_test)"), 1)))
    ids = re.search(r'test\["[^"]+"\]', code[sub.start():])
    if ids:
        start = sub.start() + ids.start()
        out.append(("ids from train", _sub_once(code, "test", "train", start)))
    return out


def _typo(code: str, spec: Spec) -> list[Variant]:
    tree = ast.parse(code)
    bound = _module_names(tree)
    assigned = {n for n, i in bound.items() if not isinstance(tree.body[i], (ast.Import, ast.ImportFrom))}
    taken = set(bound) | set(dir(builtins))
    lines = _lines(code)
    out, seen = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in assigned:
            name, col = node.id, node.col_offset
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in assigned:
            name, col = node.attr, node.end_col_offset - len(node.attr)
        else:
            continue
        for new in _misspell(name):
            if new in taken or (node.lineno, col, new) in seen:
                continue
            seen.add((node.lineno, col, new))
            k, raw = node.lineno - 1, lines[node.lineno - 1].encode()  # ast offsets count UTF-8 bytes
            line = (raw[:col] + new.encode() + raw[col + len(name.encode()):]).decode()
            out.append((f"{name} -> {new} (line {node.lineno})", "".join(lines[:k] + [line] + lines[k + 1:])))
    return out


def _misplaced_line(code: str, spec: Spec) -> list[Variant]:
    tree = ast.parse(code)
    bound = _module_names(tree)
    lines = _lines(code)
    out = []

    def move(j: int, i: int) -> str:
        """Statement j (one line) moved to just above statement i."""
        src, dst = tree.body[j].lineno - 1, tree.body[i].lineno - 1
        rest = lines[:src] + lines[src + 1:]
        at = dst if dst < src else dst - 1
        return "".join(rest[:at] + [lines[src]] + rest[at:])

    for j, stmt in enumerate(tree.body):
        if stmt.lineno != stmt.end_lineno or isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
            continue
        for name in sorted(_loads(stmt)):
            i = bound.get(name)
            if i is not None and i < j and not isinstance(tree.body[i], (ast.Import, ast.ImportFrom)):
                out.append((f"line {stmt.lineno} moved above the definition of {name}", move(j, i)))
    # the fit moved below the first prediction: a use of the model before it is fitted
    fit = next((j for j, s in enumerate(tree.body) if ast.unparse(s).startswith("model.fit(")), None)
    if fit is not None and fit + 1 < len(tree.body):
        out.append(("model.fit moved below the validation score", move(fit + 1, fit)))
    return out


GENERATORS: dict[str, Callable[[str, Spec], list[Variant]]] = {
    "file_name": _file_name, "column_name": _column_name, "missing_import": _missing_import,
    "makedirs": _makedirs, "header": _header, "shape": _shape, "typo": _typo, "misplaced_line": _misplaced_line,
}


# --- public API -----------------------------------------------------------------------------------------------

def _check_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    kinds = tuple(KINDS if kinds is None else kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown mutation kinds {unknown}; choose from {list(KINDS)}")
    return kinds


def mutations(comp_id: str, kinds: Iterable[str] | None = None, split: str | None = None) -> list[Mutation]:
    """Every mutation of the competition's compact baseline (deduplicated by code, in a fixed order), optionally
    only some kinds and one split ("train" or "eval")."""
    from acelib.tasks.suites import get_spec
    from acelib.tasks.suites.solutions import compact_baseline

    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    spec, fix = get_spec(comp_id), compact_baseline(comp_id)
    out, seen = [], {fix}
    for kind in _check_kinds(kinds):
        for description, code in GENERATORS[kind](fix, spec):
            if code not in seen:
                seen.add(code)
                out.append(Mutation(comp_id, kind, description, code, fix))
    return [m for m in out if split is None or m.split == split]


def sample(comp_id: str, n: int, split: str = "train", kinds: Iterable[str] | None = None,
           seed: int = 0) -> list[Mutation]:
    """`n` mutations of one split (fewer if the split has fewer), spread over the kinds: kinds are visited in a
    seeded order, round-robin, each time drawing one of the kind's mutations at random. Deterministic by seed."""
    rng = random.Random(f"acelib-mutations:{seed}:{comp_id}")
    pool: dict[str, list[Mutation]] = {}
    for m in mutations(comp_id, kinds, split):
        pool.setdefault(m.kind, []).append(m)
    order = sorted(pool)
    rng.shuffle(order)
    picked: list[Mutation] = []
    while len(picked) < n and any(pool.values()):
        for kind in order:
            if pool[kind] and len(picked) < n:
                picked.append(pool[kind].pop(rng.randrange(len(pool[kind]))))
    return picked
