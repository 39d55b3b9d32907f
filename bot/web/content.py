"""``/api/v1/faq``, ``/api/v1/services``, ``/api/v1/missed``, ``/api/v1/training``,
``/api/v1/intents``: the JSON API behind the admin pages, for editors and admins.

Same login and CSRF rules as the console. Editors and admins edit drafts; publishing,
rollback and retirement need the reviewer right and, for publishing, someone other
than the last editor (409), and content that passes the linter (422 with its reasons).
Missed messages are shown masked, with no way to reach the conversation they came
from. A topic is named by its bare key (``deposit``) or as ``faq%2Fdeposit``.
Publishing, rollback, retirement and assignments are written to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

import services_directory
from bot.bodies import decode_json_object, is_row_id, require_string
from bot.content.editing import (
    FAQ,
    SERVICE,
    ContentEditor,
    check_key,
    faq_data_from_body,
    needs_review,
    service_data_from_body,
)
from bot.content.live import LiveContent
from bot.domain import StaffMember, StaffRole
from bot.errors import BadInput, Conflict, NotFound
from bot.nlu.masking import fold
from bot.storage.content import ContentStore, MissedStatus, Topic, Version
from bot.storage.repository import Store
from bot.web.auth import AuthSettings, StaffGetter, requires

EDITORS = (StaffRole.ADMIN.value, StaffRole.EDITOR.value)
BODY_BYTES = 256 * 1024
PAGE_SIZE = 50


@dataclass(frozen=True)
class ContentDeps:
    editor: ContentEditor
    live: LiveContent
    content: ContentStore
    store: Store
    faq_review_max_days: int
    service_verify_max_days: int


def topic_key(kind: str, raw: str) -> str:
    key = unquote(raw)
    if kind == FAQ:
        key = key.removeprefix(f"{FAQ}/")
    check_key(kind, key)
    return key


def _stale(kind: str, data: dict[str, Any], deps: ContentDeps) -> bool:
    today = datetime.now(UTC).date()
    if kind == FAQ:
        return needs_review(data.get("reviewed"), today, deps.faq_review_max_days)
    return needs_review(data.get("verified_at"), today, deps.service_verify_max_days)


def _summary(kind: str, topic: Topic, deps: ContentDeps) -> dict[str, Any]:
    shown = topic.draft or topic.published
    data = shown.data if shown else {}
    published = topic.published
    return {
        "key": topic.key,
        "title": data.get("title") or data.get("name") or topic.key,
        "state": "retired"
        if published and published.retired
        else ("published" if published else "draft"),
        "has_draft": topic.draft is not None,
        "version": published.number if published else None,
        "needs_review": published is not None and _stale(kind, published.data, deps),
        "updated_at": shown.updated_at.isoformat() if shown else None,
        **(
            {"provinces": data.get("provinces"), "kind": data.get("kind")}
            if kind == SERVICE
            else {}
        ),
    }


def _matches(topic: Topic, query: str) -> bool:
    version = topic.draft or topic.published
    if version is None:
        return False
    haystack = " ".join([topic.key, *(str(v) for v in version.data.values())])
    return fold(query) in fold(haystack)


def _detail(kind: str, topic: Topic, deps: ContentDeps) -> dict[str, Any]:
    draft = topic.draft
    return {
        **_summary(kind, topic, deps),
        "published": topic.published.as_dict() if topic.published else None,
        "draft": draft.as_dict() if draft else None,
        "problems": deps.editor.problems(kind, topic.key, draft.data) if draft else [],
    }


def _version_out(version: Version) -> dict[str, Any]:
    return {"key": version.key, **version.as_dict()}


def create_blueprint(
    deps: Callable[[Request], ContentDeps], staff: StaffGetter, settings: AuthSettings
) -> Blueprint:
    bp = Blueprint("content_api", url_prefix="/api/v1")

    async def audit(
        request: Request, member: StaffMember, action: str, kind: str, key: str, **detail: Any
    ) -> None:
        await deps(request).store.do_append_audit(
            action, actor_id=member.id, target_type=kind, target_id=key, detail=detail
        )

    def body(request: Request) -> dict[str, Any]:
        return decode_json_object(request.body, max_bytes=BODY_BYTES)

    def data_from(kind: str, key: str, raw: dict[str, Any]) -> dict[str, Any]:
        return faq_data_from_body(raw) if kind == FAQ else service_data_from_body(key, raw)

    def add_routes(kind: str, prefix: str) -> None:
        @bp.get(prefix, name=f"{kind}_list")
        @requires(staff, settings, *EDITORS)
        async def list_topics(request: Request, member: StaffMember) -> HTTPResponse:
            d = deps(request)
            query = request.args.get("q", "").strip()[:200]
            retired = request.args.get("retired") == "1"
            topics = [
                _summary(kind, t, d)
                for t in await d.content.get_topics(kind)
                if (not query or _matches(t, query))
            ]
            if not retired:
                topics = [t for t in topics if t["state"] != "retired"]
            listing: dict[str, Any] = {"items": topics, "count": len(topics)}
            if kind == SERVICE:  # what the editor's choices are
                listing["units"] = sorted(d.live.unit_names())
                listing["kinds"] = list(services_directory.KIND_ORDER)
            return json(listing, ensure_ascii=False)

        @bp.post(prefix, name=f"{kind}_create")
        @requires(staff, settings, *EDITORS)
        async def create(request: Request, member: StaffMember) -> HTTPResponse:
            raw = body(request)
            key = require_string(raw, "key", max_chars=100, allow_empty=False).strip()
            if kind == FAQ:
                key = key.removeprefix(f"{FAQ}/")
            d = deps(request)
            draft = await d.editor.create(kind, key, data_from(kind, key, raw), member)
            topic = await d.editor.topic(kind, key)
            await audit(request, member, "content_drafted", kind, key, version=draft.number)
            return json(_detail(kind, topic, d), status=201, ensure_ascii=False)

        @bp.get(f"{prefix}/<raw_key:str>", name=f"{kind}_get")
        @requires(staff, settings, *EDITORS)
        async def get_one(request: Request, raw_key: str, member: StaffMember) -> HTTPResponse:
            d = deps(request)
            key = topic_key(kind, raw_key)
            return json(_detail(kind, await d.editor.topic(kind, key), d), ensure_ascii=False)

        @bp.get(f"{prefix}/<raw_key:str>/versions", name=f"{kind}_versions")
        @requires(staff, settings, *EDITORS)
        async def versions(request: Request, raw_key: str, member: StaffMember) -> HTTPResponse:
            d = deps(request)
            key = topic_key(kind, raw_key)
            await d.editor.topic(kind, key)
            history = await d.content.get_history(kind, key)
            return json(
                {"key": key, "versions": [_version_out(v) for v in history]}, ensure_ascii=False
            )

        @bp.put(f"{prefix}/<raw_key:str>", name=f"{kind}_put")
        @requires(staff, settings, *EDITORS)
        async def save(request: Request, raw_key: str, member: StaffMember) -> HTTPResponse:
            key = topic_key(kind, raw_key)
            raw = body(request)
            data = data_from(kind, key, raw)
            if raw.get("draft_updated_at"):
                data["draft_updated_at"] = str(raw["draft_updated_at"])
            d = deps(request)
            draft = await d.editor.save_draft(kind, key, data, member)
            await audit(request, member, "content_drafted", kind, key, version=draft.number)
            return json(_detail(kind, await d.editor.topic(kind, key), d), ensure_ascii=False)

        @bp.delete(f"{prefix}/<raw_key:str>/draft", name=f"{kind}_discard")
        @requires(staff, settings, *EDITORS)
        async def discard(request: Request, raw_key: str, member: StaffMember) -> HTTPResponse:
            key = topic_key(kind, raw_key)
            d = deps(request)
            if not await d.content.do_discard_draft(kind, key):
                raise NotFound("không có bản nháp nào")
            await audit(request, member, "content_draft_discarded", kind, key)
            try:
                topic = await d.editor.topic(kind, key)
            except NotFound:  # the only draft of a topic never published: nothing is left
                return json({"key": key, "deleted": True}, ensure_ascii=False)
            return json(_detail(kind, topic, d), ensure_ascii=False)

        @bp.post(f"{prefix}/<raw_key:str>/publish", name=f"{kind}_publish")
        @requires(staff, settings, *EDITORS)
        async def publish(request: Request, raw_key: str, member: StaffMember) -> HTTPResponse:
            key = topic_key(kind, raw_key)
            raw = body(request) if request.body else {}
            expected = raw.get("draft_updated_at")
            version = await deps(request).editor.publish(
                kind, key, member, str(expected) if expected else None
            )
            await audit(request, member, "content_published", kind, key, version=version.number)
            return json(_version_out(version), ensure_ascii=False)

        @bp.post(f"{prefix}/<raw_key:str>/rollback", name=f"{kind}_rollback")
        @requires(staff, settings, *EDITORS)
        async def rollback(request: Request, raw_key: str, member: StaffMember) -> HTTPResponse:
            key = topic_key(kind, raw_key)
            number = body(request).get("version")
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise BadInput("cần 'version': số phiên bản muốn khôi phục")
            version = await deps(request).editor.rollback(kind, key, number, member)
            await audit(
                request, member, "content_rolled_back", kind, key, version=version.number, to=number
            )
            return json(_version_out(version), ensure_ascii=False)

        @bp.post(f"{prefix}/<raw_key:str>/retire", name=f"{kind}_retire")
        @requires(staff, settings, *EDITORS)
        async def retire(request: Request, raw_key: str, member: StaffMember) -> HTTPResponse:
            key = topic_key(kind, raw_key)
            version = await deps(request).editor.retire(kind, key, member)
            await audit(request, member, "content_retired", kind, key, version=version.number)
            return json(_version_out(version), ensure_ascii=False)

    add_routes(FAQ, "/faq")
    add_routes(SERVICE, "/services")

    @bp.get("/intents")
    @requires(staff, settings, *EDITORS)
    async def intents(request: Request, member: StaffMember) -> HTTPResponse:
        """What a missed message can be assigned to: FAQ topics and the core intents."""
        live = deps(request).live
        topics = [
            {"intent": f"{FAQ}/{key}", "title": str(data.get("title") or key)}
            for key, data in sorted(live.faq.items())
        ]
        core = [
            {"intent": name, "title": name}
            for name in sorted(live.known_intents())
            if not name.startswith(f"{FAQ}/")
        ]
        return json({"items": topics + core}, ensure_ascii=False)

    @bp.get("/training/status")
    @requires(staff, settings, *EDITORS)
    async def training_status(request: Request, member: StaffMember) -> HTTPResponse:
        return json(await deps(request).live.training_status(), ensure_ascii=False)

    @bp.post("/training")
    @requires(staff, settings, StaffRole.ADMIN.value)
    async def retrain(request: Request, member: StaffMember) -> HTTPResponse:
        live = deps(request).live
        await live.refresh(force=True)
        if live.model_is_current:
            raise Conflict("mô hình đã khớp với nội dung đang dùng, không cần huấn luyện lại")
        live.ensure_model_follows(member.id)
        return json(await live.training_status(), status=202, ensure_ascii=False)

    @bp.get("/missed")
    @requires(staff, settings, *EDITORS)
    async def missed(request: Request, member: StaffMember) -> HTTPResponse:
        status = request.args.get("status", MissedStatus.OPEN.value)
        if status not in {s.value for s in MissedStatus}:
            raise BadInput("'status' phải là open, assigned, new_topic hoặc dismissed")
        raw_page = request.args.get("page", "1")
        if not (raw_page.isascii() and raw_page.isdigit()) or len(raw_page) > 6:
            raise BadInput("'page' phải là số từ 1 đến 999999")
        page = max(1, int(raw_page))
        items, total = await deps(request).content.get_missed(
            status, PAGE_SIZE, (page - 1) * PAGE_SIZE
        )
        return json(
            {
                "items": [
                    {
                        "id": m.id,
                        "text": m.masked_text,
                        "reason": m.reason,
                        "channel": m.channel,
                        "guessed_intent": m.guessed_intent,
                        "confidence": round(m.confidence, 2),
                        "status": m.status,
                        "assigned_intent": m.assigned_intent,
                        "created_at": m.created_at.isoformat(),
                    }
                    for m in items
                ],
                "total": total,
                "page": page,
            },
            ensure_ascii=False,
        )

    @bp.post("/missed/<missed_id:int>/<action:str>")
    @requires(staff, settings, *EDITORS)
    async def handle_missed(
        request: Request, missed_id: int, action: str, member: StaffMember
    ) -> HTTPResponse:
        d = deps(request)
        item = await d.content.get_missed_item(missed_id) if is_row_id(missed_id) else None
        if item is None:
            raise NotFound("không có tin nhắn này")
        if item.status != MissedStatus.OPEN.value:
            raise Conflict("tin nhắn này đã được xử lý")
        if action == "assign":
            raw = body(request)
            intent = require_string(raw, "intent", max_chars=128, allow_empty=False).strip()
            if intent in d.live.faq:
                intent = f"{FAQ}/{intent}"
            if intent not in d.live.known_intents():
                raise BadInput("không có chủ đề hay ý định này")
            if not await d.content.do_assign_missed(missed_id, intent, item.masked_text, member.id):
                raise Conflict("tin nhắn này đã được xử lý")
            await audit(request, member, "missed_assigned", "missed", str(missed_id), intent=intent)
            await d.live.refresh(force=True)
            return json({"id": missed_id, "status": "assigned", "intent": intent})
        if action == "dismiss":
            await d.content.do_close_missed(missed_id, MissedStatus.DISMISSED, member.id)
            await audit(request, member, "missed_dismissed", "missed", str(missed_id))
            return json({"id": missed_id, "status": "dismissed"})
        if action == "new-topic":
            raw = body(request)
            key = require_string(raw, "key", max_chars=100, allow_empty=False).strip()
            title = require_string(raw, "title", max_chars=200, allow_empty=False).strip()
            data = {
                "title": title,
                "answer": "",
                "sources": [],
                "reviewed": datetime.now(UTC).date().isoformat(),
                "buttons": [],
                "examples": [item.masked_text],
            }
            await d.editor.create(FAQ, key, data, member)
            await d.content.do_close_missed(missed_id, MissedStatus.NEW_TOPIC, member.id)
            await audit(request, member, "missed_new_topic", "missed", str(missed_id), topic=key)
            return json({"id": missed_id, "status": "new_topic", "key": key}, status=201)
        raise NotFound("không có thao tác này")

    return bp
