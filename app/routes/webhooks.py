"""/api/v1/webhooks: receivers of an owner's events (Standard Webhooks), their deliveries, redelivery.

Built per app (`routes(settings)`): the page size of the delivery list is this deployment's limit. The
sending is the webhook sender's (worker.webhooks); a request only writes rows and sends a task.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at run time, and some name
# this deployment's limits, locals of routes().
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app import presenters, schemas
from app.deps import JOB_SUBMISSIONS, CallerDep, JsonCallerDep
from app.openapi import PROBLEMS
from app.replies import reply
from service import webhooks
from service.errors import InvalidInput
from service.settings import Settings


def routes(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=schemas.WebhookCreated,
        responses=PROBLEMS(400, 401, 409, 413, 415, 422),
        summary="Register a webhook; its signing secret is shown only in this response",
    )
    def create_webhook(caller: JsonCallerDep, body: schemas.WebhookCreate) -> Response:
        principal = caller.principal()
        rt = caller.rt
        url = webhooks.check_url(body.url, rt.settings)
        with rt.db.transaction() as session:
            hook = webhooks.subscribe(
                session, principal, url, body.events, body.description, rt.settings.max_webhooks_per_owner
            )
            made = schemas.WebhookCreated(**presenters.webhook(hook).model_dump(), secret=hook.secret)
        return reply(made, status.HTTP_201_CREATED, {"Location": made.links.self})

    @router.get("", response_model=schemas.WebhookList, responses=PROBLEMS(401), summary="List webhooks")
    def list_webhooks(caller: CallerDep) -> Response:
        with caller.reads() as (session, principal):
            hooks = [presenters.webhook(row) for row in webhooks.of_owner(session, principal)]
        return reply(schemas.WebhookList(items=hooks))

    @router.get("/{webhook_id}", response_model=schemas.Webhook, responses=PROBLEMS(401, 404), summary="Read a webhook")
    def get_webhook(caller: CallerDep, webhook_id: str) -> Response:
        with caller.reads() as (session, principal):
            return reply(presenters.webhook(webhooks.owned(session, principal, webhook_id)))

    @router.delete(
        "/{webhook_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=PROBLEMS(401, 404),
        summary="Delete a webhook and its deliveries; nothing more is sent to it",
    )
    def delete_webhook(caller: CallerDep, webhook_id: str) -> Response:
        principal = caller.principal()
        with caller.rt.db.transaction() as session:
            webhooks.unsubscribe(session, principal, webhook_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/{webhook_id}/deliveries",
        response_model=schemas.DeliveryPage,
        responses=PROBLEMS(401, 404, 422),
        summary="A webhook's deliveries, newest first: status, attempts, last response, next try",
    )
    def list_deliveries(
        caller: CallerDep,
        webhook_id: str,
        limit: Annotated[int, Query(ge=1, le=settings.max_list_limit)] = 50,
        cursor: Annotated[
            str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$", description="next_cursor of the last page.")
        ] = None,
    ) -> Response:
        with caller.reads() as (session, principal):
            try:
                rows, next_cursor = webhooks.deliveries(session, principal, webhook_id, limit=limit, cursor=cursor)
            except ValueError as exc:
                raise InvalidInput("bad cursor", [(("query", "cursor"), str(exc))]) from exc
            items = [presenters.delivery(row) for row in rows]
        return reply(schemas.DeliveryPage(items=items, next_cursor=next_cursor))

    @router.post(
        "/{webhook_id}/deliveries/{delivery_id}/redeliver",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=schemas.Delivery,
        responses=PROBLEMS(401, 404, 409, 429),
        summary="Send a delivered or failed message again: a new delivery, the same webhook-id and body",
    )
    def redeliver(caller: CallerDep, webhook_id: str, delivery_id: str) -> Response:
        # Each one makes the sender call out again: on the owner's job-creation budget.
        principal = caller.principal(JOB_SUBMISSIONS)
        rt = caller.rt
        with rt.db.transaction() as session:
            again = webhooks.redeliver(session, principal, webhook_id, delivery_id)
            made = presenters.delivery(again)
        rt.tasks.send_delivery(made.id)
        return reply(made, status.HTTP_202_ACCEPTED)

    return router
