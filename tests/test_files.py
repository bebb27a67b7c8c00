"""The one file-writing helper: an interrupted write leaves the old file and no temporary; writers never collide."""

import os

import pytest

from tlcourse.files import atomic_file, atomic_folder, write_atomic


def test_write_atomic_writes_and_creates_folders(tmp_path):
    write_atomic(tmp_path / "a" / "b.txt", "hi ✅")
    assert (tmp_path / "a" / "b.txt").read_text(encoding="utf-8") == "hi ✅"
    assert oct((tmp_path / "a" / "b.txt").stat().st_mode & 0o777) == "0o644"  # readable, not mkstemp's 0600


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    write_atomic(target, "old")
    for error in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_file(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half of the new")
            raise error
        assert target.read_text() == "old"
        assert os.listdir(tmp_path) == ["results.json"]


def test_two_writers_to_one_target_do_not_collide(tmp_path):
    target = tmp_path / "model.safetensors"
    with atomic_file(target) as a, atomic_file(target) as b:
        assert a != b  # unique temporaries, not one fixed name
        for tmp, text in ((a, "first"), (b, "second")):
            with open(tmp, "w") as f:
                f.write(text)
    assert target.read_text() == "first"  # the last to finish (the outer context) wins, whole
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_atomic_folder_swaps_a_whole_folder_or_nothing(tmp_path):
    target = tmp_path / "saved"
    with atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert os.listdir(target) == ["config.json"]
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as tmp:
        (tmp / "weights").write_text("partial")
        raise KeyboardInterrupt
    assert os.listdir(target) == ["config.json"] and os.listdir(tmp_path) == ["saved"]  # old folder intact
    with atomic_folder(target) as a, atomic_folder(target) as b:
        assert a != b
        (a / "x").write_text("a")
        (b / "y").write_text("b")
    assert os.listdir(target) == ["x"] and os.listdir(tmp_path) == ["saved"]  # replaced whole, nothing left behind
