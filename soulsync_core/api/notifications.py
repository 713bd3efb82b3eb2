"""``/notifications``: the targets with their delivery log, and a test send."""

from __future__ import annotations

import msgspec
from aiohttp import web

from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ApiError, not_found, ok
from soulsync_core.notifications.log import Delivery
from soulsync_core.notifications.service import TargetStatus, UnknownTarget

routes = Routes("notifications")

RECENT = 50


class NotificationsView(msgspec.Struct):
    """``targets``: each configured target; ``recent``: the newest deliveries, newest first."""

    targets: list[TargetStatus]
    recent: list[Delivery]


class SendTestBody(msgspec.Struct):
    """``target``: the name of one target; absent, every target is sent the test."""

    target: str | None = None


class SendTestResults(msgspec.Struct):
    """One result per target: ``ok``, and ``error`` saying what the target answered."""

    results: list[Delivery]


@routes.get("/notifications", "Notification targets (URLs redacted) with their last success "
            "and failure, and the delivery log.", response=NotificationsView)
async def list_notifications(request: web.Request) -> web.Response:
    notifier = core_of(request).notifier
    return ok(NotificationsView(await notifier.overview(), await notifier.log.recent(RECENT)))


@routes.post("/notifications/test", "Send a test event to one target (or all) now; answers what "
             "each target said.", body=SendTestBody, response=SendTestResults, errors=(404, 409))
async def send_test_notification(request: web.Request, body: SendTestBody) -> web.Response:
    notifier = core_of(request).notifier
    if not notifier.targets():
        raise ApiError(409, "CONFLICT", "No notification targets are configured: set "
                       "notifications.targets or notifications.webhooks (PATCH /api/v1/settings).")
    try:
        results = await notifier.test(body.target)
    except UnknownTarget as exc:
        raise not_found(str(exc)) from None
    return ok(SendTestResults(results))
