"""torch.compile as a spec option: the same training, compiled (the GP critic stays eager)."""

from __future__ import annotations

import pytest
import torch

from tests.wgan.helpers import comparable, run_points, tiny_trainer


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vanilla", "wgan-gp"])
def test_compiled_training_matches_eager(kind: str) -> None:
    changes = {"loss": {"kind": kind}, "steps": 3, "log_every": 1, "checkpoint_every": 100, "evaluate": False}
    eager = run_points(tiny_trainer(**changes))
    compiled_trainer = tiny_trainer(**changes, compile=True)
    # Without a penalty both networks compile; with one the critic stays eager (double backward).
    assert compiled_trainer._generate is not compiled_trainer.generator
    assert (compiled_trainer._criticise is compiled_trainer.critic) == (kind == "wgan-gp")
    compiled = run_points(compiled_trainer)
    for a, b in zip(eager, compiled, strict=True):
        assert a.step == b.step
        torch.testing.assert_close(
            torch.tensor(comparable(a)[1:4]), torch.tensor(comparable(b)[1:4]), rtol=1e-4, atol=1e-5
        )
