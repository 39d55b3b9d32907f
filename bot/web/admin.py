"""``/api/v1/admin/...``: what admins need to keep the service running.

``GET /api/v1/admin/alerts`` lists the alerts the service raised for people to act on
(a platform token that could not be refreshed ...) and, per channel and reason, the
replies the outbox gave up on. Nothing in either is personal: no message text, no
platform ids, no tokens.
"""

from __future__ import annotations

from collections.abc import Callable

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot.domain import StaffMember, StaffRole
from bot.storage.channel_state import ChannelStateStore
from bot.web.auth import AuthSettings, StaffGetter, requires

KEEPERS = (StaffRole.ADMIN.value, StaffRole.SUPERVISOR.value)


def create_blueprint(
    state: Callable[[Request], ChannelStateStore], staff: StaffGetter, settings: AuthSettings
) -> Blueprint:
    bp = Blueprint("admin_api", url_prefix="/api/v1/admin")

    @bp.get("/alerts")
    @requires(staff, settings, *KEEPERS)
    async def alerts(request: Request, member: StaffMember) -> HTTPResponse:
        store = state(request)
        return json(
            {
                "alerts": await store.get_alerts(),
                "failed_deliveries": await store.get_failed_deliveries(),
            },
            ensure_ascii=False,
        )

    return bp
