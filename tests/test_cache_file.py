"""The cache directory's files are written whole or not at all
(slopfast._cache_file), by every writer of one."""
import os

import pytest

from slopfast import _cache_file, count_cache, tokens


def test_the_chunks_make_the_file_and_replace_the_old_one(tmp_path):
    path = tmp_path / "sub" / "cache.bin"
    assert _cache_file.write_whole(str(path), b"ab", memoryview(b"cd"), b"")
    assert path.read_bytes() == b"abcd"
    assert _cache_file.write_whole(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert sorted(os.listdir(path.parent)) == ["cache.bin"]


def test_a_file_that_cannot_be_put_in_place_leaves_nothing_behind(tmp_path):
    taken = tmp_path / "cache.bin"
    taken.mkdir()     # the rename onto a directory fails
    assert not _cache_file.write_whole(str(taken), b"data")
    assert os.listdir(tmp_path) == ["cache.bin"] and taken.is_dir()


def test_a_directory_that_cannot_be_made_is_no_error(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    assert not _cache_file.write_whole(str(tmp_path / "file" / "cache.bin"), b"data")
    assert os.listdir(tmp_path) == ["file"]


@pytest.mark.parametrize("writer", ["blob", "counts"])
def test_the_writers_leave_no_temporary_file_when_they_fail(tmp_path, monkeypatch, writer):
    taken = tmp_path / "cache.bin"
    taken.mkdir()
    if writer == "blob":
        monkeypatch.setattr(tokens, "_blob_path", lambda encoding: str(taken))
        tokens._write_cached_blob("o200k_base", b"ranks")
    else:
        count_cache._write(str(taken), b"\0" * 16)
    assert os.listdir(tmp_path) == ["cache.bin"] and taken.is_dir()
