"""Checkpoint files: round trip, atomic writes, damage detection, newest-intact lookup, partial loads."""

import json
import os

import pytest
import safetensors.torch
import torch

from tests.wgan.helpers import tiny_trainer
from wgan.checkpoint import (
    GENERATOR,
    CheckpointError,
    VerifiedFiles,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    manifest_path,
    save_checkpoint,
    write_atomic,
)


@pytest.fixture(scope="module")
def trained():
    trainer = tiny_trainer(steps=2)
    trainer.fit()
    return trainer


def _save_steps(directory, trainer, steps):
    for step in steps:
        checkpoint = trainer.checkpoint()
        checkpoint.step = step
        save_checkpoint(directory, checkpoint)


def test_round_trip_keeps_every_tensor_the_spec_and_the_metadata(tmp_path, trained):
    checkpoint = trained.checkpoint()
    path = save_checkpoint(tmp_path, checkpoint)
    assert path == manifest_path(tmp_path, 2) == tmp_path / "step-00000002.json"
    loaded = load_checkpoint(path)
    assert loaded.step == 2
    assert loaded.spec == trained.spec
    assert loaded.tensors.keys() == checkpoint.tensors.keys()
    assert all(torch.equal(loaded.tensors[k], v) for k, v in checkpoint.tensors.items())
    assert loaded.extra == json.loads(json.dumps(checkpoint.extra))
    # The manifest says what it is and vouches for its tensors.
    manifest = json.loads(path.read_text())
    assert manifest["format"] == "wgan-checkpoint"
    assert manifest["version"] == 1
    assert manifest["tensors"] == "step-00000002.safetensors"
    # Optimizer state is stored as tensors (Adam's moments), not pickled.
    assert any(k.startswith("opt_critic.state.") and k.endswith("exp_avg") for k in loaded.tensors)


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, trained):
    save_checkpoint(tmp_path, trained.checkpoint())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002.json", "step-00000002.safetensors"]


def test_a_failed_write_leaves_neither_the_file_nor_a_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_load_only_the_generator(tmp_path, trained):
    path = save_checkpoint(tmp_path, trained.checkpoint())
    partial = load_checkpoint(path, prefixes=(GENERATOR,))
    assert partial.tensors
    assert all(k.startswith(GENERATOR) for k in partial.tensors)
    assert partial.part(GENERATOR).keys() == trained.generator.state_dict().keys()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda blob: blob[: len(blob) // 2], "does not match its manifest's checksum"),
        (lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), "does not match its manifest's checksum"),
        (lambda blob: b"", "does not match its manifest's checksum"),
    ],
    ids=["truncated", "one-bit-flipped", "emptied"],
)
def test_a_damaged_tensor_file_is_refused(tmp_path, trained, damage, message):
    path = save_checkpoint(tmp_path, trained.checkpoint())
    tensors = tmp_path / "step-00000002.safetensors"
    tensors.write_bytes(damage(tensors.read_bytes()))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_missing_tensor_file_is_refused(tmp_path, trained):
    path = save_checkpoint(tmp_path, trained.checkpoint())
    (tmp_path / "step-00000002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)


def _manifest(tmp_path, trained):
    path = save_checkpoint(tmp_path, trained.checkpoint())
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\xff garbage \x89PNG", "is not a checkpoint manifest"),
        (b"{not json", "is not a checkpoint manifest"),
        (b"[1, 2, 3]", "is not a wgan-checkpoint manifest"),
        (b'{"format": "something-else"}', "is not a wgan-checkpoint manifest"),
        (b'{"format": "wgan-checkpoint", "version": 99}', "format version 99"),
        (b'{"format": "wgan-checkpoint", "version": 1, "step": 3}', "lacks sha256, size, spec, tensors"),
    ],
    ids=["binary", "broken-json", "json-list", "other-format", "other-version", "incomplete"],
)
def test_a_garbage_manifest_is_refused(tmp_path, content, message):
    path = tmp_path / "step-00000003.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("step", "three", "malformed 'step'"),
        ("size", None, "malformed 'size'"),
        ("spec", {"dataset": {"name": "8gaussians"}, "bogus": 1}, "holds a spec this code cannot read"),
        ("tensors", "../elsewhere.safetensors", "unexpected tensor file"),
        ("tensors", ".hidden", "unexpected tensor file"),
        ("extra", [1], "malformed 'extra'"),
    ],
)
def test_a_manifest_with_bad_fields_is_refused(tmp_path, trained, key, value, message):
    path, manifest = _manifest(tmp_path, trained)
    manifest[key] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_file_that_is_not_safetensors_is_refused_even_with_a_matching_checksum(tmp_path, trained):
    import hashlib

    path, manifest = _manifest(tmp_path, trained)
    blob = b"\xff" * 64
    (tmp_path / manifest["tensors"]).write_bytes(blob)
    manifest.update(size=len(blob), sha256=hashlib.sha256(blob).hexdigest())
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="is not a safetensors file"):
        load_checkpoint(path)


def test_no_checkpoint_at_a_path_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "step-00000001.json")


def test_latest_checkpoint_skips_damaged_ones(tmp_path, trained):
    assert latest_checkpoint(tmp_path / "absent") is None
    assert latest_checkpoint(tmp_path) is None
    _save_steps(tmp_path, trained, [5, 10, 15])
    (tmp_path / "notes.json").write_text("{}")  # not a checkpoint name: ignored
    assert [step for step, _ in list_checkpoints(tmp_path)] == [5, 10, 15]
    assert latest_checkpoint(tmp_path) == manifest_path(tmp_path, 15)

    tensors = tmp_path / "step-00000015.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:100])
    assert latest_checkpoint(tmp_path) == manifest_path(tmp_path, 10)

    manifest_path(tmp_path, 10).write_text("{")
    assert latest_checkpoint(tmp_path) == manifest_path(tmp_path, 5)

    # A crash between writing the tensors and the manifest leaves tensors without a manifest.
    manifest_path(tmp_path, 5).unlink()
    assert latest_checkpoint(tmp_path) is None


def test_steps_sort_numerically_past_eight_digits(tmp_path, trained):
    _save_steps(tmp_path, trained, [99_999_999, 100_000_000, 7])
    assert latest_checkpoint(tmp_path) == tmp_path / "step-100000000.json"


def test_the_tensor_file_is_plain_safetensors_with_no_pickle(tmp_path, trained):
    save_checkpoint(tmp_path, trained.checkpoint())
    tensors = safetensors.torch.load_file(str(tmp_path / "step-00000002.safetensors"))
    assert tensors.keys() == trained.checkpoint().tensors.keys()
    with open(tmp_path / "step-00000002.safetensors", "rb") as handle:
        assert b"\x80\x04\x95" not in handle.read()[:64]  # a pickle protocol-4 header would start like this


def test_a_file_verified_before_is_not_hashed_again_until_it_changes(tmp_path, trained, monkeypatch):
    import hashlib

    import wgan.checkpoint as checkpoint_module

    path = save_checkpoint(tmp_path, trained.checkpoint())
    verified = VerifiedFiles()
    hashed = []
    real = hashlib.sha256
    monkeypatch.setattr(checkpoint_module.hashlib, "sha256", lambda data=b"": hashed.append(1) or real(data))
    load_checkpoint(path, verified=verified)
    load_checkpoint(path, verified=verified)
    assert len(hashed) == 1, "the second load trusts the first one's check"
    tensors = path.with_suffix(".safetensors")
    damaged = bytearray(tensors.read_bytes())
    damaged[-1] ^= 0xFF
    tensors.write_bytes(bytes(damaged))
    os.utime(tensors, ns=(tensors.stat().st_atime_ns, tensors.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path, verified=verified)
