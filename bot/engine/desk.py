"""The counsellor's side of a handoff: accept, reply, refer, transfer, close, and the
"still waiting" updates — each recorded through the outbox (so the person gets it in
their own channel, retried on failure) and told to the consoles as a live event.

Who may do what is checked by the web layer before it calls in here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.domain import AuthorKind, ConversationState, Reply, StaffMember
from bot.engine.events import EventHub, message_event
from bot.engine.handoff import Availability, ServiceHours
from bot.engine.responses import ResponseCatalog
from bot.errors import ConfigError, Conflict
from bot.storage.cases import Case, CaseStore, StaffStatus
from bot.storage.models import utcnow
from bot.storage.repository import RecordedReply

logger = logging.getLogger("donghanh.desk")
MESSENGER_WINDOW = timedelta(hours=24)
REFERRALS = {"111": "utter_refer_111", "police": "utter_refer_police"}
OUTCOMES = {
    "resolved": "Đã hỗ trợ xong",
    "referred_111": "Đã chuyển tổng đài 111",
    "referred_police": "Đã chuyển công an",
    "referred_service": "Đã giới thiệu dịch vụ hỗ trợ",
    "information_only": "Chỉ cần thông tin",
    "no_reply": "Người dùng không trả lời",
    "not_trafficking": "Không liên quan mua bán người",
    "other": "Khác",
}
REFERRAL_TITLES = {"111": "Tổng đài 111", "police": "Công an (113)"}
DESK_RESPONSES = (
    "utter_handoff_accepted",
    "utter_handoff_closed",
    "utter_handoff_still_waiting",
    *REFERRALS.values(),
)


@dataclass(frozen=True)
class ReplyWindow:
    open: bool
    reason: str | None = None


class CounsellorDesk:
    def __init__(
        self,
        cases: CaseStore,
        responses: ResponseCatalog,
        events: EventHub,
        hours: ServiceHours,
        *,
        notify_outbox: Callable[[], None],
        facebook_human_agent: bool = False,
    ) -> None:
        missing = set(DESK_RESPONSES) - set(responses.names)
        if missing:
            raise ConfigError(f"responses.yml lacks {sorted(missing)}")
        self.cases = cases
        self.responses = responses
        self.events = events
        self.hours = hours
        self._notify_outbox = notify_outbox
        self.facebook_human_agent = facebook_human_agent

    async def availability(self) -> Availability:
        counsellors = await self.cases.count_available_counsellors()
        in_hours = self.hours.is_open(utcnow())
        typical = await self.cases.get_typical_wait_minutes() if counsellors and in_hours else None
        return Availability(counsellors, in_hours, typical)

    def reply_window(self, case: Case) -> ReplyWindow:
        """Messenger lets a page write only within 24 hours of the person's last
        message, unless it may use the HUMAN_AGENT tag (7 days)."""
        if case.state is not ConversationState.COUNSELLOR:
            return ReplyWindow(False, "Cuộc trò chuyện không còn do tư vấn viên phụ trách.")
        if case.channel != "facebook" or case.last_inbound_at is None:
            return ReplyWindow(True)
        limit = timedelta(days=7) if self.facebook_human_agent else MESSENGER_WINDOW
        if utcnow() - case.last_inbound_at <= limit:
            return ReplyWindow(True)
        return ReplyWindow(
            False,
            "Đã quá thời hạn Messenger cho phép nhắn lại: người dùng cần nhắn trước thì "
            "tư vấn viên mới trả lời được.",
        )

    async def accept(self, case: Case, member: StaffMember) -> None:
        if not await self.cases.do_accept(
            case, member.id, self.responses.get("utter_handoff_accepted")
        ):
            raise Conflict("Cuộc trò chuyện này đã có người nhận hoặc không còn chờ.")
        self._notify_outbox()
        self.events.publish({"type": "queue", "urgent": False})
        self._state_event(case.id, "counsellor", member.id, member.username)

    async def reply(self, case: Case, member: StaffMember, text: str) -> RecordedReply:
        window = self.reply_window(case)
        if not window.open:
            raise Conflict(window.reason or "Không gửi được lúc này.")
        recorded = await self.cases.do_send(
            case, Reply(text), author=AuthorKind.COUNSELLOR, staff_id=member.id
        )
        self._after_send(case, recorded, AuthorKind.COUNSELLOR, member.username)
        return recorded

    async def refer(self, case: Case, member: StaffMember, to: str) -> RecordedReply:
        window = self.reply_window(case)
        if not window.open:
            raise Conflict(window.reason or "Không gửi được lúc này.")
        reply = self.responses.get(REFERRALS[to])
        recorded = await self.cases.do_send(
            case, reply, author=AuthorKind.COUNSELLOR, staff_id=member.id
        )
        await self.cases.do_record_referral(case, to)
        self._after_send(case, recorded, AuthorKind.COUNSELLOR, member.username)
        return recorded

    async def transfer(self, case: Case, to: StaffStatus) -> None:
        if not await self.cases.do_transfer(case, to.id):
            raise Conflict("Chỉ chuyển được cuộc trò chuyện đang có tư vấn viên phụ trách.")
        self.events.publish({"type": "queue", "urgent": False})
        self._state_event(case.id, "counsellor", to.id, to.username)

    async def close(self, case: Case, outcome: str) -> None:
        goodbye = self.responses.get("utter_handoff_closed")
        if not await self.cases.do_close(case, outcome, goodbye):
            raise Conflict("Cuộc trò chuyện này đã kết thúc.")
        self._notify_outbox()
        self.events.publish({"type": "queue", "urgent": False})
        self._state_event(case.id, "closed", None, None)

    async def send_waiting_updates(self, after: timedelta, max_updates: int) -> int:
        """Tell people who have waited ``after`` that they are not forgotten."""
        sent = 0
        reply = self.responses.get("utter_handoff_still_waiting")
        for case in await self.cases.get_due_waiting_updates(after, max_updates):
            if await self.cases.do_send_waiting_update(case, reply):
                sent += 1
        if sent:
            self._notify_outbox()
            logger.info("waiting updates", extra={"event": "waiting_updates", "count": sent})
        return sent

    def _after_send(
        self, case: Case, recorded: RecordedReply, author: AuthorKind, username: str | None
    ) -> None:
        self._notify_outbox()
        if case.assigned_staff_id is not None:
            self.events.publish(
                message_event(
                    case.id,
                    recorded.message_id,
                    author.value,
                    recorded.text,
                    recorded.created_at.isoformat(),
                    username,
                ),
                to=case.assigned_staff_id,
            )

    def _state_event(
        self, conversation_id: int, state: str, staff_id: int | None, username: str | None
    ) -> None:
        assigned = {"id": staff_id, "username": username} if staff_id is not None else None
        self.events.publish(
            {
                "type": "conversation",
                "conversation_id": conversation_id,
                "state": state,
                "assigned_to": assigned,
            }
        )
