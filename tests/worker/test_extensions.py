"""The worker's extension hook: nothing by default, the named factory's extension when set, and a
clear error for a factory that makes something else. (The fault tests use it for real.)"""

from __future__ import annotations

import pytest

from tests.support import faults
from tests.support.service import settings
from worker.extensions import WorkerExtension, load_extension


def not_an_extension(_settings: object) -> object:
    return object()


def test_without_a_setting_the_hooks_leave_training_as_it_is() -> None:
    extension = load_extension(settings().model_copy(update={"worker_extension": ""}))
    assert type(extension) is WorkerExtension

    def poll() -> bool:
        return False

    assert extension.should_stop(None, poll) is poll  # type: ignore[arg-type]
    assert extension.evaluate(None) is None


def test_the_named_factory_makes_the_extension() -> None:
    extension = load_extension(settings().model_copy(update={"worker_extension": faults.EXTENSION}))
    assert isinstance(extension, faults.Faults)


def test_a_factory_that_makes_something_else_is_refused_by_name() -> None:
    named = f"{__name__}:not_an_extension"
    with pytest.raises(TypeError, match="not_an_extension made a object, not a WorkerExtension"):
        load_extension(settings().model_copy(update={"worker_extension": named}))
