"""What the fault-injection tests share; each test gets a private stack (make_stack) it may break."""

from __future__ import annotations

# Long enough to interrupt, short enough to finish in seconds here.
FAULT_SPEC = {
    "dataset": {"name": "8gaussians"},
    "model": {"hidden_dim": 16, "depth": 2},
    "n_critic": 2,
    "batch_size": 32,
    "steps": 300,
    "log_every": 5,
    "checkpoint_every": 50,
    "evaluate": False,
}
