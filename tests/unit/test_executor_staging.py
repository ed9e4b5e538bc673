"""acelib.sandbox.executor without a Ray cluster: packing a competition's public side (deterministic, content-hashed,
never the private answers), staging it on an executor node, and the client's choice of executor."""
from __future__ import annotations

import io
import os
import tarfile
from types import SimpleNamespace

import pytest

from acelib.sandbox.executor import ExecutorSlot, PublicDir, pack_public, pick_slot, stage_public
from acelib.tasks.competition import Competition

PUBLIC = {"train.csv": "id,x,y\n1,0.5,0\n", "test.csv": "id,x\n3,0.7\n", "description.md": "Predict y."}
PRIVATE = {"test.csv": "id,y\n3,SECRET-ANSWER\n"}


def _names(tar_bytes: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        return t.getnames()


def test_pack_holds_the_public_files_only(fake_competition):
    comp = fake_competition(PUBLIC, PRIVATE)
    (comp.public_dir / "images").mkdir()
    (comp.public_dir / "images" / "a.png").write_bytes(b"\x89PNG")
    packed = pack_public(comp)
    assert sorted(_names(packed.tar)) == ["description.md", "images", "images/a.png", "test.csv", "train.csv"]
    assert b"SECRET-ANSWER" not in packed.tar
    assert packed.metadata == comp.to_json() and packed.nbytes == len(packed.tar)
    assert packed.key.startswith("comp-")


def test_pack_is_content_hashed(fake_competition, tmp_path):
    a = fake_competition(PUBLIC, PRIVATE, name="a")
    b = Competition.from_json(tmp_path / "copy", a.to_json())   # same metadata, same files, other place and times
    b.public_dir.mkdir(parents=True)
    for name, text in PUBLIC.items():
        (b.public_dir / name).write_text(text)
        os.utime(b.public_dir / name, (1, 1))
    assert pack_public(a).key == pack_public(b).key and pack_public(a).tar == pack_public(b).tar
    (b.public_dir / "train.csv").write_text("id,x,y\n1,0.5,1\n")
    assert pack_public(b).key != pack_public(a).key
    # Metadata counts too: the executor rebuilds the Competition from it.
    c = Competition.from_json(a.root, {**a.to_json(), "metric": "auc"})
    assert pack_public(c).key != pack_public(a).key


def test_pack_refuses_links_and_missing_dirs(fake_competition):
    comp = fake_competition(PUBLIC, PRIVATE)
    (comp.public_dir / "answers.csv").symlink_to(comp.private_dir / "test.csv")
    with pytest.raises(ValueError, match="symbolic link.*copy of its target"):
        pack_public(comp)
    with pytest.raises(FileNotFoundError, match="prepare the competition"):
        pack_public(fake_competition(None, name="absent"))
    with pytest.raises(TypeError, match="public_dir"):
        pack_public(object())


def test_stage_rebuilds_the_competition_without_its_private_dir(fake_competition, tmp_path):
    comp = fake_competition(PUBLIC, PRIVATE)
    packed = pack_public(comp)
    cache = tmp_path / "executor-cache"
    staged = stage_public(packed, cache)
    assert isinstance(staged, Competition) and staged.to_json() == comp.to_json()
    assert staged.root == (cache / packed.key).resolve()
    assert {p.name: p.read_text() for p in staged.public_dir.iterdir()} == PUBLIC
    assert not staged.private_dir.exists()
    assert sorted(str(p.relative_to(staged.root)) for p in staged.root.iterdir()) == ["prepared"]
    assert os.listdir(cache) == [packed.key]   # no partial directory left behind
    # Staged once per node: a second stage needs no bytes (what an executor does when the key exists already).
    again = stage_public(type(packed)(packed.key, None, packed.metadata, packed.nbytes), cache)
    assert again == staged


def test_stage_of_a_bare_public_dir(tmp_path):
    public = tmp_path / "x" / "prepared" / "public"
    public.mkdir(parents=True)
    (public / "train.csv").write_text("id\n1\n")
    packed = pack_public(SimpleNamespace(public_dir=public))
    assert packed.metadata is None and packed.key.startswith("x-")
    staged = stage_public(packed, tmp_path / "cache")
    assert isinstance(staged, PublicDir) and (staged.public_dir / "train.csv").read_text() == "id\n1\n"
    with pytest.raises(TypeError, match="tar bytes"):
        stage_public(type(packed)("other-key", None, None, 0), tmp_path / "cache")


def test_pick_slot_least_loaded_round_robin_live_only():
    slots = [ExecutorSlot(i, handle=None) for i in range(3)]
    assert [pick_slot(slots, start).index for start in (0, 1, 2)] == [0, 1, 2]   # ties: round-robin from start
    slots[0].inflight, slots[1].inflight, slots[2].inflight = 2, 1, 1
    assert pick_slot(slots, 0).index == 1 and pick_slot(slots, 2).index == 2
    slots[1].up = slots[2].up = False
    assert pick_slot(slots, 1).index == 0            # the only live one, however loaded
    slots[0].up = False
    assert pick_slot(slots, 0) is None               # none live: the client holds the work until one is back
