"""acelib.files.atomic_write: whole files or nothing, unique temporaries, plain permissions."""
import os
import stat

import pytest

from acelib.files import atomic_write


def test_writes_text_and_bytes_and_replaces(tmp_path):
    p = tmp_path / "a.json"
    atomic_write(p, "first")
    assert p.read_text() == "first"
    atomic_write(p, b"\x00second")
    assert p.read_bytes() == b"\x00second"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["a.json"]          # no temporary left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a.json"
    atomic_write(p, "old")
    with pytest.raises(TypeError):
        atomic_write(p, 123)                                    # not str/bytes: fails while writing
    assert p.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.json"]
    target = tmp_path / "dir"
    target.mkdir()
    (target / "x").write_text("kept")
    with pytest.raises(OSError):
        atomic_write(target, "cannot replace a non-empty directory")   # fails at the rename
    assert (target / "x").read_text() == "kept" and sorted(os.listdir(tmp_path)) == ["a.json", "dir"]
