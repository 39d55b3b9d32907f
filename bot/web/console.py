"""The counsellor console's API under ``/api/v1`` and its live events socket.

Every route checks the session (and CSRF on writes) and the role, then who may touch
this conversation: a counsellor only what they hold (or, to accept, what waits), a
supervisor everything; admins and editors nothing. The person's consent is enforced
here: when they shared nothing before the handoff, the full history is refused with 403
and the attempt is audited. Every read and action on a conversation is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic.server.websockets.impl import WebsocketImplProtocol

from bot.bodies import MAX_ROW_ID, decode_json_object, is_row_id, require_string
from bot.domain import Consent, ConversationState, Priority, StaffMember, StaffRole
from bot.engine.desk import OUTCOMES, REFERRAL_TITLES, REFERRALS, CounsellorDesk
from bot.engine.events import EventHub, Subscription
from bot.errors import BadInput, Conflict, Forbidden, NotFound, Unauthorized
from bot.storage.cases import Case, CaseStore, StoredMessage
from bot.storage.models import utcnow
from bot.storage.repository import RecordedReply, StaffStore, Store
from bot.web.auth import AuthSettings, authenticate, requires

BODY_BYTES = 16 * 1024
REPLY_CHARS = 2000
NOTE_CHARS = 4000
PING_SECONDS = 20
COUNSELLING = (StaffRole.COUNSELLOR.value, StaffRole.SUPERVISOR.value)
SUPERVISOR = StaffRole.SUPERVISOR.value
ADMIN = StaffRole.ADMIN.value
PRIORITY_TITLES = {
    "danger": "Nguy hiểm ngay",
    "many_signs": "Nhiều dấu hiệu",
    "normal": "Bình thường",
}
SCREENING_TITLES = {
    "low": "Sàng lọc: ít dấu hiệu",
    "some_signs": "Sàng lọc: một số dấu hiệu",
    "many_signs": "Sàng lọc: nhiều dấu hiệu",
    "danger_now": "Sàng lọc: nguy hiểm ngay",
}
CUE_TITLES = {
    "deception": "Bị lừa về công việc",
    "documents_withheld": "Bị giữ giấy tờ",
    "movement_restricted": "Bị hạn chế đi lại",
    "isolation": "Bị cô lập, không được liên lạc",
    "violence": "Bị đánh đập",
    "threats": "Bị đe dọa",
    "wages_withheld": "Không được trả lương",
    "debt_bondage": "Bị ép trả nợ",
    "excessive_hours": "Làm việc quá sức",
    "sold": "Bị bán",
    "ransom": "Gia đình bị đòi tiền chuộc",
    "forced_scam": "Bị ép lừa đảo trực tuyến",
    "sexual_exploitation": "Bị bóc lột tình dục",
    "forced_marriage": "Bị ép kết hôn",
    "minor": "Người dưới 18 tuổi",
}


@dataclass(frozen=True)
class ConsoleDeps:
    desk: CounsellorDesk
    cases: CaseStore
    store: Store
    staff: StaffStore


DepsGetter = Callable[[Request], ConsoleDeps]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _message_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "author": message.author,
        "text": message.text,
        "at": message.at.isoformat(),
        "counsellor": message.counsellor,
    }


def _sent_json(recorded: RecordedReply, member: StaffMember) -> dict[str, Any]:
    """What a counsellor just sent, as the messages list shows it."""
    return _message_json(
        StoredMessage(
            recorded.message_id, "counsellor", recorded.text, recorded.created_at, member.username
        )
    )


def _shares_history(case: Case) -> bool:
    return case.consent == Consent.FULL.value


def shown_priority(case: Case) -> str:
    """The priority the console may show: "many signs" comes from the screening, which
    the person did not share unless they shared their history; danger always shows."""
    if case.priority is None:
        return Priority.NORMAL.value
    if case.priority is not Priority.DANGER and not _shares_history(case):
        return Priority.NORMAL.value
    return case.priority.value


def queue_item(case: Case, now_ts: float) -> dict[str, Any]:
    priority = shown_priority(case)
    screening = None
    if _shares_history(case) and case.risk_level:
        title = SCREENING_TITLES.get(case.risk_level, case.risk_level)
        screening = {"level": case.risk_level, "title": title}
    waited = int(now_ts - case.queued_at.timestamp()) if case.queued_at else 0
    assigned = (
        {"id": case.assigned_staff_id, "username": case.assigned_username}
        if case.assigned_staff_id is not None
        else None
    )
    return {
        "id": case.id,
        "channel": case.channel,
        "state": case.state.value,
        "priority": priority,
        "priority_title": PRIORITY_TITLES[priority],
        "risk_level": case.risk_level if _shares_history(case) else None,
        "consent": case.consent,
        "queued_at": _iso(case.queued_at),
        "waiting_seconds": max(0, waited) if case.state is ConversationState.WAITING else 0,
        "screening": screening,
        "callback_requested": case.callback_phone is not None,
        "assigned_to": assigned,
    }


def _may_hold(member: StaffMember, case: Case) -> bool:
    return case.assigned_staff_id == member.id


def create_blueprint(
    deps: DepsGetter, staff_getter: Callable[[Request], StaffStore], settings: AuthSettings
) -> Blueprint:
    bp = Blueprint("api_console", url_prefix="/api/v1")
    counselling = requires(staff_getter, settings, *COUNSELLING)

    async def audit(
        request: Request, member: StaffMember, action: str, case_id: int | None, **detail: Any
    ) -> None:
        await deps(request).store.do_append_audit(
            action,
            actor_id=member.id,
            target_type="conversation" if case_id is not None else None,
            target_id=str(case_id) if case_id is not None else None,
            detail=detail,
        )

    async def load_case(request: Request, member: StaffMember, case_id: int, action: str) -> Case:
        """The case, if this member may ``action`` it; refusals are audited."""
        case = await deps(request).cases.get_case(case_id) if is_row_id(case_id) else None
        if case is None or (case.state is ConversationState.BOT and case.queued_at is None):
            raise NotFound("Không tìm thấy cuộc trò chuyện này trong hàng chờ.")
        if member.role == SUPERVISOR or _may_hold(member, case):
            return case
        if action in ("view", "accept") and case.state is ConversationState.WAITING:
            return case
        await audit(request, member, "access_denied", case_id, attempted=action)
        raise Forbidden("Cuộc trò chuyện này không do bạn phụ trách.")

    # -- options, availability, queue ---------------------------------------------------

    @bp.get("/console/options")
    @counselling
    async def options(request: Request, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        canned = await d.cases.get_canned_replies()
        staff = await d.cases.get_staff_status()
        return json(
            {
                "outcomes": [{"code": c, "title": t} for c, t in OUTCOMES.items()],
                "referrals": [{"code": c, "title": t} for c, t in REFERRAL_TITLES.items()],
                "canned_replies": [{"id": i, "title": t, "text": x} for i, t, x in canned],
                "staff": [
                    {"id": s.id, "username": s.username, "role": s.role, "available": s.available}
                    for s in staff
                ],
            },
            ensure_ascii=False,
        )

    @bp.post("/me/availability")
    @counselling
    async def set_availability(request: Request, member: StaffMember) -> HTTPResponse:
        data = decode_json_object(request.body, max_bytes=BODY_BYTES)
        available = data.get("available")
        if not isinstance(available, bool):
            raise BadInput("field 'available' must be true or false")
        await deps(request).cases.do_set_available(member.id, available)
        await audit(request, member, "availability", None, available=available)
        deps(request).desk.events.publish({"type": "queue", "urgent": False})
        return json({"available": available})

    @bp.get("/queue")
    @counselling
    async def queue(request: Request, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        now = utcnow()
        cases = await d.cases.get_queue()
        items = [(case, queue_item(case, now.timestamp())) for case in cases]
        availability = await d.desk.availability()
        return json(
            {
                "waiting": [i for c, i in items if c.state is ConversationState.WAITING],
                "mine": [
                    i
                    for c, i in items
                    if c.state is ConversationState.COUNSELLOR and _may_hold(member, c)
                ],
                "others": [
                    i
                    for c, i in items
                    if member.role == SUPERVISOR
                    and c.state is ConversationState.COUNSELLOR
                    and not _may_hold(member, c)
                ],
                "counsellors_available": availability.counsellors,
                "in_hours": availability.in_hours,
            },
            ensure_ascii=False,
        )

    # -- one conversation ----------------------------------------------------------------

    def details(d: ConsoleDeps, case: Case, member: StaffMember) -> dict[str, Any]:
        window = d.desk.reply_window(case)
        held_by_me = _may_hold(member, case)
        cues = case.slots.get("cues_seen") or [] if _shares_history(case) else []
        callback = (
            {"phone": case.callback_phone, "when": case.callback_when}
            if case.callback_phone and (held_by_me or member.role == SUPERVISOR)
            else None
        )
        return {
            **queue_item(case, utcnow().timestamp()),
            "history_allowed": _shares_history(case),
            "cues": [CUE_TITLES.get(str(c), str(c)) for c in cues],
            "callback": callback,
            "reply_window": {
                "open": window.open and held_by_me,
                "reason": window.reason
                if not window.open
                else (None if held_by_me else "Bạn chưa nhận cuộc trò chuyện này."),
            },
        }

    async def current_details(d: ConsoleDeps, case_id: int, member: StaffMember) -> HTTPResponse:
        """The case as it is after an action changed it."""
        case = await d.cases.get_case(case_id)
        if case is None:  # erased at the person's request in between
            raise NotFound("Cuộc trò chuyện này không còn nữa.")
        return json(details(d, case, member), ensure_ascii=False)

    @bp.get("/conversations/<case_id:int>")
    @counselling
    async def conversation(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        case = await load_case(request, member, case_id, "view")
        await audit(request, member, "conversation_viewed", case_id)
        return json(details(deps(request), case, member), ensure_ascii=False)

    @bp.post("/conversations/<case_id:int>/accept")
    @counselling
    async def accept(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        case = await load_case(request, member, case_id, "accept")
        await d.desk.accept(case, member)
        await audit(request, member, "conversation_accepted", case_id)
        return await current_details(d, case_id, member)

    @bp.get("/conversations/<case_id:int>/messages")
    @counselling
    async def messages(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        case = await load_case(request, member, case_id, "read")
        since_handoff = request.args.get("from") == "handoff"
        after = _int_arg(request, "after")
        if not since_handoff and not _shares_history(case):
            await audit(request, member, "history_refused", case_id)
            raise Forbidden(
                "Người dùng không đồng ý chia sẻ lịch sử trước khi chuyển: chỉ xem được từ "
                "lúc chuyển (from=handoff)."
            )
        from_id = case.handoff_message_id if since_handoff else None
        found = await d.cases.get_messages(case_id, from_id=from_id, after_id=after)
        await audit(
            request,
            member,
            "messages_read",
            case_id,
            scope="handoff" if since_handoff else "history",
            count=len(found),
        )
        return json({"messages": [_message_json(m) for m in found]}, ensure_ascii=False)

    @bp.post("/conversations/<case_id:int>/messages")
    @counselling
    async def send(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        case = await load_case(request, member, case_id, "reply")
        text = _text_field(request, REPLY_CHARS)
        if not _may_hold(member, case):
            raise Forbidden("Nhận cuộc trò chuyện trước khi trả lời.")
        recorded = await d.desk.reply(case, member, text)
        await audit(request, member, "message_sent", case_id, message_id=recorded.message_id)
        return json({"message": _sent_json(recorded, member)}, status=201, ensure_ascii=False)

    @bp.get("/conversations/<case_id:int>/notes")
    @counselling
    async def notes(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        await load_case(request, member, case_id, "read_notes")
        found = await d.cases.get_notes(case_id)
        await audit(request, member, "notes_read", case_id, count=len(found))
        return json(
            {
                "notes": [
                    {"id": n.id, "author": n.author, "text": n.text, "at": n.at.isoformat()}
                    for n in found
                ]
            },
            ensure_ascii=False,
        )

    @bp.post("/conversations/<case_id:int>/notes")
    @counselling
    async def add_note(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        await load_case(request, member, case_id, "add_note")
        text = _text_field(request, NOTE_CHARS)
        note = await d.cases.do_add_note(case_id, member.id, text)
        await audit(request, member, "note_added", case_id, note_id=note.id)
        return json(
            {
                "note": {
                    "id": note.id,
                    "author": note.author,
                    "text": note.text,
                    "at": note.at.isoformat(),
                }
            },
            status=201,
            ensure_ascii=False,
        )

    @bp.post("/conversations/<case_id:int>/transfer")
    @counselling
    async def transfer(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        case = await load_case(request, member, case_id, "transfer")
        data = decode_json_object(request.body, max_bytes=BODY_BYTES)
        username = require_string(data, "to", max_chars=64, allow_empty=False)
        target = await d.cases.get_staff_by_username(username)
        if target is None or target.role not in COUNSELLING:
            raise BadInput("Không có tư vấn viên nào tên như vậy.")
        if target.id == case.assigned_staff_id:
            raise BadInput("Cuộc trò chuyện đã do người này phụ trách.")
        await d.desk.transfer(case, target)
        await audit(request, member, "conversation_transferred", case_id, to=target.username)
        return await current_details(d, case_id, member)

    @bp.post("/conversations/<case_id:int>/refer")
    @counselling
    async def refer(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        case = await load_case(request, member, case_id, "refer")
        data = decode_json_object(request.body, max_bytes=BODY_BYTES)
        to = data.get("to")
        if to not in REFERRALS:
            raise BadInput('field \'to\' must be "111" or "police"')
        if not _may_hold(member, case):
            raise Forbidden("Nhận cuộc trò chuyện trước khi chuyển tuyến.")
        recorded = await d.desk.refer(case, member, str(to))
        await audit(request, member, "referral", case_id, to=to)
        return json({"message": _sent_json(recorded, member)}, ensure_ascii=False)

    @bp.post("/conversations/<case_id:int>/close")
    @counselling
    async def close(request: Request, case_id: int, member: StaffMember) -> HTTPResponse:
        d = deps(request)
        case = await load_case(request, member, case_id, "close")
        data = decode_json_object(request.body, max_bytes=BODY_BYTES)
        outcome = data.get("outcome")
        if outcome not in OUTCOMES:
            raise BadInput("field 'outcome' must be one of: " + ", ".join(OUTCOMES))
        await d.desk.close(case, str(outcome))
        await audit(request, member, "conversation_closed", case_id, outcome=outcome)
        return json({"ok": True})

    # -- audit log and canned replies ------------------------------------------------------

    @bp.get("/audit")
    @requires(staff_getter, settings, SUPERVISOR)
    async def audit_log(request: Request, member: StaffMember) -> HTTPResponse:
        conversation_id = _int_arg(request, "conversation_id")
        limit = min(_int_arg(request, "limit") or 200, 1000)
        entries = await deps(request).cases.get_audit(conversation_id=conversation_id, limit=limit)
        await audit(request, member, "audit_read", conversation_id)
        return json({"entries": entries}, ensure_ascii=False)

    @bp.get("/canned-replies")
    @requires(staff_getter, settings, *COUNSELLING, ADMIN)
    async def canned(request: Request, member: StaffMember) -> HTTPResponse:
        found = await deps(request).cases.get_canned_replies()
        return json(
            {"canned_replies": [{"id": i, "title": t, "text": x} for i, t, x in found]},
            ensure_ascii=False,
        )

    @bp.post("/canned-replies")
    @requires(staff_getter, settings, ADMIN)
    async def add_canned(request: Request, member: StaffMember) -> HTTPResponse:
        data = decode_json_object(request.body, max_bytes=BODY_BYTES)
        title = require_string(data, "title", max_chars=100, allow_empty=False)
        text = require_string(data, "text", max_chars=REPLY_CHARS, allow_empty=False)
        reply_id = await deps(request).cases.do_add_canned_reply(title.strip(), text.strip())
        if reply_id is None:
            raise Conflict("Đã có câu trả lời mẫu với tiêu đề này.")
        await audit(request, member, "canned_reply_added", None, id=reply_id)
        return json(
            {"id": reply_id, "title": title.strip(), "text": text.strip()},
            status=201,
            ensure_ascii=False,
        )

    @bp.delete("/canned-replies/<reply_id:int>")
    @requires(staff_getter, settings, ADMIN)
    async def delete_canned(request: Request, reply_id: int, member: StaffMember) -> HTTPResponse:
        if not is_row_id(reply_id) or not await deps(request).cases.do_delete_canned_reply(
            reply_id
        ):
            raise NotFound("Không có câu trả lời mẫu này.")
        await audit(request, member, "canned_reply_deleted", None, id=reply_id)
        return json({"ok": True})

    # -- live events ---------------------------------------------------------------------

    @bp.websocket("/events")
    async def events(request: Request, socket: WebsocketImplProtocol) -> None:
        if not _same_origin(request):
            await socket.close(4403, "origin")
            return
        try:
            member = await authenticate(request, staff_getter(request), settings)
        except Unauthorized:
            await socket.close(4401, "login")
            return
        if member.role not in COUNSELLING:
            await socket.close(4403, "role")
            return
        await _serve_events(deps(request), socket, member)

    return bp


async def _serve_events(d: ConsoleDeps, socket: WebsocketImplProtocol, member: StaffMember) -> None:
    """Forward this member's events; the open socket also counts as being on duty."""
    hub: EventHub = d.desk.events
    try:
        with hub.subscribe(member.id) as subscription:
            await d.cases.do_touch_console(member.id)
            hub.publish({"type": "queue", "urgent": False})
            user = {"id": member.id, "username": member.username, "role": member.role}
            await socket.send(jsonlib.dumps({"type": "hello", "user": user}, ensure_ascii=False))
            await _forward(
                socket, subscription, asyncio.create_task(_read_pings(socket, d, member))
            )
    finally:
        if not hub.is_present(member.id):  # the member's last console closed
            await asyncio.shield(d.cases.do_leave_console(member.id))
            hub.publish({"type": "queue", "urgent": False})


async def _forward(
    socket: WebsocketImplProtocol, subscription: Subscription, reader: asyncio.Task[None]
) -> None:
    """Send events as they come until the console goes away (the reader ends)."""
    try:
        while not reader.done():
            getter = asyncio.ensure_future(subscription.events.get())
            await asyncio.wait(
                {getter, reader}, timeout=PING_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if not getter.done():
                getter.cancel()
                continue
            await socket.send(jsonlib.dumps(getter.result(), ensure_ascii=False))
            if subscription.overflowed:
                await socket.close(4008, "overflow")
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _read_pings(socket: WebsocketImplProtocol, d: ConsoleDeps, member: StaffMember) -> None:
    """Answer pings and keep the member's presence fresh; returns when the socket closes."""
    while True:
        raw = await socket.recv()
        if raw is None:
            return
        with contextlib.suppress(ValueError, TypeError):
            frame = jsonlib.loads(raw)
            if isinstance(frame, dict) and frame.get("type") == "ping":
                await d.cases.do_touch_console(member.id)
                await socket.send(jsonlib.dumps({"type": "pong"}))


def _same_origin(request: Request) -> bool:
    """A browser always sends Origin on a WebSocket: refuse other sites' pages."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser (an integration or a test client): the cookie decides
    return bool(urlsplit(origin).netloc == request.headers.get("host", ""))


def _int_arg(request: Request, name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or int(raw) > MAX_ROW_ID:
        raise BadInput(f"'{name}' must be a whole number up to {MAX_ROW_ID}")
    return int(raw)


def _text_field(request: Request, max_chars: int) -> str:
    data = decode_json_object(request.body, max_bytes=BODY_BYTES)
    return require_string(data, "text", max_chars=max_chars, allow_empty=False).strip()
