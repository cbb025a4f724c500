"""The client's models cannot drift from the server: each is compared with the schema of the same name in
the running API's /openapi.json (the events' payloads, which OpenAPI cannot show, with the server's own
record models). A field the server does not have, a field of another JSON type, or a missing field the
server requires is a failure. The client may read a server enum as a plain string (tolerant of new
values), and a server object it does not model as a dict."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from service import records
from wgan_client import models
from wgan_client.models import WireModel

Alternatives = frozenset[tuple[Any, ...]]
ANY: Alternatives = frozenset({("any",)})

CLIENT_MODELS = sorted(
    (
        cls
        for _, cls in inspect.getmembers(models, inspect.isclass)
        if issubclass(cls, WireModel) and cls is not WireModel
    ),
    key=lambda cls: cls.__name__,
)
MODELLED = {cls.schema_name() for cls in CLIENT_MODELS}
# Not in /openapi.json: an event stream's body has no schema there.
EVENT_PAYLOADS: dict[type[WireModel], type[BaseModel]] = {
    models.StatusChange: records.StatusEvent,
    models.RunStatus: records.RunStatus,
    models.RunCheckpoint: records.RunCheckpoint,
    models.ExperimentFinished: records.ExperimentFinished,
}


class Side:
    """One side's schemas: where its $refs point, and the component name each ref key stands for."""

    def __init__(self, defs: Mapping[str, Any], name: Callable[[str], str] = lambda key: key) -> None:
        self.defs = defs
        self.name = name

    def alternatives(self, schema: Mapping[str, Any]) -> Alternatives:
        """The JSON types a value may have, each with what it holds (items, values, model, format, enum)."""
        if "$ref" in schema:
            key = schema["$ref"].rsplit("/", 1)[1]
            target = self.defs[key]
            if "properties" in target:
                name = self.name(key)
                # An object the client does not model, it holds as a dict.
                return frozenset({("model", name)}) if name in MODELLED else frozenset({("map", ANY)})
            return self.alternatives(target)
        for union in ("anyOf", "oneOf"):
            if union in schema:
                return frozenset().union(*(self.alternatives(part) for part in schema[union]))
        if "enum" in schema or "const" in schema:
            values = frozenset(schema.get("enum", [schema.get("const")]))
            kind = schema.get("type") or ("string" if all(isinstance(v, str) for v in values) else "integer")
            return frozenset({(kind, schema.get("format"), values)})
        kind = schema.get("type")
        if kind is None:
            return ANY
        if kind == "array":
            return frozenset({("array", self.alternatives(schema["items"]) if schema.get("items") else ANY)})
        if kind == "object":
            values = schema.get("additionalProperties", True)
            return frozenset({("map", self.alternatives(values) if isinstance(values, dict) else ANY)})
        return frozenset({(kind, schema.get("format"), None)})


def _same(client: Alternatives, server: Alternatives) -> bool:
    left = set(server)
    for alternative in client:
        match = next((candidate for candidate in left if _same_one(alternative, candidate)), None)
        if match is None:
            return False
        left.remove(match)
    return not left


def _same_one(client: tuple[Any, ...], server: tuple[Any, ...]) -> bool:
    if client[0] != server[0]:
        return False
    if client[0] in {"array", "map"}:
        return _same(client[1], server[1])
    if len(client) == 3:
        # Same format; and the same values, unless the client takes any value of the type.
        return client[1] == server[1] and (client[2] is None or client[2] == server[2])
    return client == server


def drift(model: type[WireModel], server: Mapping[str, Any], server_side: Side) -> list[str]:
    """How `model` differs from the server's schema for it; empty when it does not."""
    classes = {cls.__name__: cls for cls in CLIENT_MODELS} | {model.__name__: model}
    schema = model.model_json_schema()
    client_side = Side(schema.get("$defs", {}), lambda key: classes[key].schema_name())
    ours, theirs = schema["properties"], server["properties"]
    problems = [f"{model.__name__}.{name}: the server has no such field" for name in ours.keys() - theirs.keys()]
    problems += [
        f"{model.__name__}.{name}: the server requires it, the client lacks it"
        for name in set(server.get("required", [])) - ours.keys()
    ]
    for name in sorted(ours.keys() & theirs.keys()):
        mine, served = client_side.alternatives(ours[name]), server_side.alternatives(theirs[name])
        if not _same(mine, served):
            problems.append(
                f"{model.__name__}.{name}: the client reads {sorted(mine)}, the server sends {sorted(served)}"
            )
    return problems


@pytest.fixture(scope="module")
def openapi(api: str) -> dict[str, Any]:
    return httpx.get(f"{api}/openapi.json").json()


@pytest.mark.parametrize(
    "model", [cls for cls in CLIENT_MODELS if cls not in EVENT_PAYLOADS], ids=lambda cls: cls.__name__
)
def test_each_model_matches_its_openapi_schema(model: type[WireModel], openapi: dict[str, Any]) -> None:
    components = openapi["components"]["schemas"]
    assert model.schema_name() in components, f"the server has no schema {model.schema_name()}"
    assert drift(model, components[model.schema_name()], Side(components)) == []


@pytest.mark.parametrize("model", list(EVENT_PAYLOADS), ids=lambda cls: cls.__name__)
def test_each_event_payload_matches_the_servers_record(model: type[WireModel]) -> None:
    record = EVENT_PAYLOADS[model]
    assert model.schema_name() == record.__name__
    server = record.model_json_schema(mode="serialization")
    assert drift(model, server, Side(server.get("$defs", {}))) == []


def test_the_check_finds_drift(openapi: dict[str, Any]) -> None:
    components = openapi["components"]["schemas"]

    class Progress(WireModel):  # a field renamed, one retyped, one the server never sent
        component = "Progress"
        step: str
        total: int
        seconds_left: float | None = None

    class Metric(WireModel):  # nullability counts too: the server's critic_loss is never null
        component = "Metric"
        step: int
        critic_loss: float | None
        generator_loss: float
        wasserstein_estimate: float
        gradient_penalty: float | None
        seconds_per_step: float
        time: str  # a plain string where the server says date-time

    found = drift(Progress, components["Progress"], Side(components))
    assert sorted(problem.split(":")[0] for problem in found) == [
        "Progress.seconds_left",
        "Progress.step",
        "Progress.total",
        "Progress.total_steps",
    ]
    found = drift(Metric, components["Metric"], Side(components))
    assert sorted(problem.split(":")[0] for problem in found) == ["Metric.critic_loss", "Metric.time"]
