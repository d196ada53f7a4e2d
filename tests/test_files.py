"""fleetportal.files.write_atomically: what the broker reads (CRL, ACLs, config, keys) is the old
file or the new one, at the mode asked for, and the replacement survives a crash."""

import os
import stat

import pytest

from fleetportal import files


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_new_content_replaces_the_old_at_the_mode_asked_for(tmp_path):
    target = tmp_path / "crl.pem"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)  # the mode holds whatever the umask
    try:
        files.write_atomically(target, b"new", files.PUBLIC)
    finally:
        os.umask(old_umask)

    assert target.read_bytes() == b"new"
    assert mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["crl.pem"]


def test_a_new_file_is_private_unless_asked_otherwise(tmp_path):
    files.write_atomically(tmp_path / "backend.password", b"secret")

    assert mode(tmp_path / "backend.password") == 0o600


def test_a_write_that_raises_midway_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "crl.pem"
    target.write_bytes(b"old")
    target.chmod(0o644)

    with pytest.raises(TypeError):
        files.write_atomically(target, "text is not bytes")

    assert target.read_bytes() == b"old"
    assert mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["crl.pem"]


def test_a_failing_disk_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "acl.device"
    target.write_bytes(b"old")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        files.write_atomically(target, b"new" * 1000)

    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["acl.device"]


def test_the_rename_is_made_durable_by_syncing_the_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync_directory = files.fsync_directory
    monkeypatch.setattr(
        files, "fsync_directory", lambda d: (synced.append(d), real_fsync_directory(d))
    )

    files.write_atomically(tmp_path / "crl.pem", b"new", files.PUBLIC)

    assert synced == [tmp_path]
