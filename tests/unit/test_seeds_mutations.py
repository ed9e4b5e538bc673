"""Mutations of the compact baselines (pure text, no data): deterministic, one small undoable change each, every kind
for every competition, and a train/eval split that is disjoint and a function of the mutation alone. Running them
(they must break the script) is in tests/integration/test_suites.py."""
import ast
import difflib
import hashlib
from collections import Counter

import pytest

from acelib.tasks.suites import SPECS, compact_baseline, mutations
from acelib.tasks.suites.mutations import EVAL_MODULUS, KINDS, sample


@pytest.fixture(scope="module")
def every() -> dict:
    return {cid: mutations.mutations(cid) for cid in sorted(SPECS)}


def changed_lines(a: str, b: str) -> int:
    return sum(1 for line in difflib.ndiff(a.splitlines(), b.splitlines()) if line[:1] in "+-")


def test_every_competition_has_every_kind(every):
    for cid, ms in every.items():
        assert set(Counter(m.kind for m in ms)) == set(KINDS), cid


def test_one_small_change_that_undoing_fixes(every):
    for cid, ms in every.items():
        fix = compact_baseline(cid)
        for m in ms:
            assert m.fix == fix and m.code != fix, (cid, m.description)
            # at most one line replaced or moved (two +/- lines), or one import line removed
            assert changed_lines(fix, m.code) <= 2, (cid, m.kind, m.description)
            ast.parse(m.code)  # runtime bugs, never syntax errors (those are the model's own)
            if m.kind == "misplaced_line":
                assert sorted(m.code.splitlines()) == sorted(fix.splitlines())


def test_deterministic_and_deduplicated(every):
    cid = "titanic-survival"
    again = mutations.mutations(cid)
    assert again == every[cid]
    assert len({m.code for m in again}) == len(again)
    assert sample(cid, 6, seed=3) == sample(cid, 6, seed=3)
    assert sample(cid, 6, seed=3) != sample(cid, 6, seed=4)


def test_sample_spreads_over_the_kinds():
    picked = sample("boston-housing", len(KINDS), seed=0)
    assert len({m.kind for m in picked}) == len(KINDS)
    assert {m.kind for m in sample("boston-housing", 5, kinds=["typo", "file_name"])} == {"typo", "file_name"}
    assert len(sample("boston-housing", 10_000, kinds=["makedirs"])) <= 1


def test_train_and_eval_are_disjoint_and_follow_the_hash_rule(every):
    n = Counter()
    for cid, ms in every.items():
        train, held = mutations.mutations(cid, split="train"), mutations.mutations(cid, split="eval")
        assert len(train) + len(held) == len(ms)
        assert not {m.code for m in train} & {m.code for m in held}
        for m in ms:
            digest = hashlib.sha256(f"{cid}\0{m.kind}\0{m.code}".encode()).hexdigest()[:16]
            assert m.split == ("eval" if int(digest, 16) % EVAL_MODULUS == 0 else "train")
        n.update(m.split for m in ms)
    assert 0.2 < n["eval"] / (n["eval"] + n["train"]) < 0.3  # one in EVAL_MODULUS, up to hash noise
    for seed in range(3):
        assert all(m.split == "eval" for m in sample("spooky-mini", 8, split="eval", seed=seed))


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="typo"):
        mutations.mutations("titanic-survival", kinds=["tyop"])
    with pytest.raises(ValueError, match="split"):
        mutations.mutations("titanic-survival", split="test")


@pytest.mark.parametrize("kind, needle", [
    ("file_name", '"../input/train.csv"'), ("column_name", 'train["Survived"]'),
    ("makedirs", 'os.makedirs("submission")\n'), ("header", ", index=False, header=False)"),
])
def test_examples(kind, needle):
    assert any(needle in m.code for m in mutations.mutations("titanic-survival", kinds=[kind]))
