"""``create_app(settings)``: the only place that wires everything together.

Resources (database engine, NLU model, outbox dispatcher) are opened in
``before_server_start`` and closed in ``after_server_stop``, never at import time.
``open_services`` is the same wiring without a server, for ``donghanh chat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels import telegram as telegram_package
from bot.channels.callback import handler as callback_channel
from bot.channels.common import InboundRelay
from bot.channels.facebook import handler as facebook_channel
from bot.channels.facebook.sender import FacebookSender
from bot.channels.rest import handler as rest_channel
from bot.channels.terminal.chat import run_terminal_chat
from bot.channels.webchat import handler as webchat_channel
from bot.channels.zalo import handler as zalo_channel
from bot.channels.zalo.sender import ZaloSender
from bot.channels.zalo.tokens import ZaloTokens
from bot.config import Settings, store_instance_secret
from bot.content.editing import FAQ, ContentEditor
from bot.content.faq import faq_metadata, faq_responses
from bot.content.live import LiveContent
from bot.datafiles import read_yaml
from bot.domain import FaqEntry
from bot.engine.actions import InProcessActionRunner, RemoteActionRunner
from bot.engine.desk import CounsellorDesk
from bot.engine.events import EventHub
from bot.engine.flood import SenderLimits
from bot.engine.handoff import BUTTON_INTENTS as HANDOFF_BUTTON_INTENTS
from bot.engine.handoff import AvailabilityCheck, HandoffFlow, ServiceHours
from bot.engine.outbox import OutboxDispatcher, Sender
from bot.engine.policy import CHANNEL_INTENTS, Policy
from bot.engine.responses import ResponseCatalog
from bot.engine.safety import load_safety_rules
from bot.engine.screening import SCREENING_INTENT, ScreeningFlow, load_questionnaire
from bot.engine.turns import TurnEngine
from bot.errors import ConfigError
from bot.logs import configure_logging
from bot.nlu.cues import CUE_NAMES
from bot.nlu.interpreter import ClassifierInterpreter
from bot.nlu.training import load_interpreter
from bot.storage.cases import CaseStore
from bot.storage.channel_state import ChannelStateStore
from bot.storage.content import ContentStore
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, ping, session_factory
from bot.storage.migrate import SCHEMA_HEAD, current_revision
from bot.storage.notify import PgNotifyRelay, supports_notify
from bot.storage.repository import StaffStore, Store
from bot.storage.retention import purge_daily
from bot.storage.stats import StatsStore
from bot.web import admin, auth, console, health, openapi, pages, parse
from bot.web import content as content_api
from bot.web import stats as stats_api
from bot.web.errors import register_error_handlers

if TYPE_CHECKING:
    from bot.channels.telegram import handler as telegram_channel

logger = logging.getLogger("donghanh.app")
# A message younger than this may still be in a live turn in another worker; older and
# unanswered, its turn died with a process. Recovering a live turn by mistake costs only
# work: recording a turn is serialised on the conversation's row, so one of the two
# loses and the message is answered once.
RECOVERY_GRACE = timedelta(seconds=10)
_app_numbers = itertools.count(1)


class ModelHolder:
    """Holds the interpreter in use; swapping it is one attribute assignment."""

    def __init__(self, interpreter: ClassifierInterpreter) -> None:
        self.current = interpreter

    def get(self) -> ClassifierInterpreter:
        return self.current

    def swap(self, interpreter: ClassifierInterpreter) -> None:
        self.current = interpreter

    def data_hash(self) -> str:
        return str(self.current.meta.get("data_hash", ""))

    def info(self) -> dict[str, str]:
        return {
            "data_hash": str(self.current.meta.get("data_hash", "")),
            "trained_at": str(self.current.meta.get("trained_at", "")),
        }


@dataclass
class Services:
    """Everything a running instance holds open, built by ``open_services``."""

    settings: Settings
    store: Store
    staff: StaffStore
    models: ModelHolder
    turns: TurnEngine
    dispatcher: OutboxDispatcher
    database: AsyncEngine
    cases: CaseStore
    desk: CounsellorDesk
    channel_state: ChannelStateStore
    content: ContentStore
    live: LiveContent
    editor: ContentEditor
    stats: StatsStore
    telegram: telegram_channel.TelegramInbound | None = None
    zalo_tokens: ZaloTokens | None = None
    relay: PgNotifyRelay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def check_schema_is_current(database: Any) -> None:
    current, head = await current_revision(database), SCHEMA_HEAD
    if current != head:
        raise ConfigError(
            f"the database is at revision {current or 'none'}, the code needs {head}: "
            "run `donghanh db upgrade`"
        )


def build_catalog(settings: Settings, faq: list[FaqEntry]) -> ResponseCatalog:
    """The fixed responses and the published FAQ answers."""
    return ResponseCatalog.from_file(settings.responses_file).with_extra(
        faq_responses(faq), faq_metadata(faq)
    )


def build_policy(
    settings: Settings, catalog: ResponseCatalog, availability: AvailabilityCheck
) -> Policy:
    """The policy over the catalogue; actions run in process, or on the Rasa action
    server at ``action_endpoint``; ``availability`` says who can take a handoff."""
    domain = {"responses": catalog.as_rasa_domain()}
    local = InProcessActionRunner(domain=domain)
    runner: InProcessActionRunner | RemoteActionRunner = local
    if settings.action_endpoint:
        runner = RemoteActionRunner(settings.action_endpoint, domain, local.names)
    screening = ScreeningFlow(load_questionnaire(settings.questionnaire_file, frozenset(CUE_NAMES)))
    safety = load_safety_rules(settings.safety_file)
    handoff = HandoffFlow(catalog, availability)
    return Policy(catalog, runner, screening=screening, safety=safety, handoff=handoff)


async def check_seed_content(settings: Settings, content: ContentStore) -> None:
    """On a first run the shipped content is published: it must pass the linter."""
    if await content.count_versions(FAQ) or not settings.faq_dir.exists():
        return
    from bot.content.check import check_content, format_problems

    problems = check_content(settings.faq_dir, settings.nlu_data_dir, settings.responses_file)
    if problems:
        raise ConfigError("the FAQ seed content fails its checks:\n" + format_problems(problems))


def _interpreter_loader(settings: Settings) -> Callable[[], ClassifierInterpreter]:
    def load() -> ClassifierInterpreter:
        return load_interpreter(
            settings.model_dir,
            settings.nlu_threshold,
            settings.cue_rules_file,
            button_intents=frozenset({SCREENING_INTENT, *HANDOFF_BUTTON_INTENTS, *CHANNEL_INTENTS}),
        )

    return load


def platform_channels_configured(settings: Settings) -> dict[str, bool]:
    """Which messaging platforms have the credentials they need."""
    return {
        telegram_package.CHANNEL: bool(settings.telegram_token),
        facebook_channel.CHANNEL: bool(
            settings.facebook_app_secret
            and settings.facebook_page_token
            and settings.facebook_verify_token
        ),
        zalo_channel.CHANNEL: bool(
            settings.zalo_app_id and settings.zalo_secret_key and settings.zalo_access_token
        ),
    }


def _platform_senders(
    settings: Settings, state: ChannelStateStore
) -> tuple[dict[str, Sender], telegram_channel.TelegramInbound | None, ZaloTokens | None]:
    """The outbound clients of the configured platforms (no network until they send)."""
    configured = platform_channels_configured(settings)
    senders: dict[str, Sender] = {}
    telegram: telegram_channel.TelegramInbound | None = None
    tokens: ZaloTokens | None = None
    if configured[telegram_package.CHANNEL]:
        from bot.channels.telegram import handler as telegram_channel
        from bot.channels.telegram.sender import TelegramSender, make_bot

        bot = make_bot(settings.telegram_token, settings.telegram_base_url)
        senders[telegram_package.CHANNEL] = TelegramSender(bot)
        telegram = telegram_channel.TelegramInbound(bot, InboundRelay(telegram_package.CHANNEL))
    if configured[facebook_channel.CHANNEL]:
        senders[facebook_channel.CHANNEL] = FacebookSender(
            settings.facebook_graph_url,
            settings.facebook_page_token,
            human_agent=settings.facebook_human_agent,
        )
    if configured[zalo_channel.CHANNEL]:
        tokens = ZaloTokens(
            state,
            app_id=settings.zalo_app_id,
            app_secret=settings.zalo_app_secret,
            oauth_url=settings.zalo_oauth_url,
            access_token=settings.zalo_access_token,
            refresh_token=settings.zalo_refresh_token,
        )
        senders[zalo_channel.CHANNEL] = ZaloSender(settings.zalo_api_url, tokens)
    return senders, telegram, tokens


async def open_services(
    settings: Settings,
    senders: dict[str, Sender] | None = None,
    *,
    platform_channels: bool = False,
) -> Services:
    """Everything a running instance needs; with ``platform_channels`` also the
    senders of the configured messaging platforms (the server's case)."""
    settings.require_secrets()
    hours = ServiceHours.parse(settings.service_hours)
    database = create_engine(settings.database_url)
    await check_schema_is_current(database)
    vault = Vault(settings.encryption_keys)
    store = Store(session_factory(database), vault, settings.pseudonym_secret)
    load_model = _interpreter_loader(settings)
    models = ModelHolder(load_model())
    models.get().parse("xin chào")  # warm up: the first parse loads underthesea
    channel_state = ChannelStateStore(session_factory(database), vault)
    senders = dict(senders or {})
    telegram, zalo_tokens = None, None
    if platform_channels:
        platform, telegram, zalo_tokens = _platform_senders(settings, channel_state)
        senders.update(platform)
    if zalo_tokens is not None:
        await zalo_tokens.start()
    dispatcher = OutboxDispatcher(
        store,
        senders,
        max_attempts=settings.outbox_max_attempts,
        retry_base_seconds=settings.outbox_retry_base_seconds,
        # with several workers a reply may be due on another worker's web chat socket
        idle_seconds=1.0 if supports_notify(settings.database_url) else 5.0,
        lease_seconds=settings.outbox_lease_seconds,
    )
    content = ContentStore(session_factory(database), vault)
    await check_seed_content(settings, content)
    catalog = build_catalog(settings, [])  # the FAQ comes in with the live content below
    cases = CaseStore(session_factory(database), vault)
    await seed_canned_replies(settings, cases)
    events = EventHub()
    desk = CounsellorDesk(
        cases,
        catalog,
        events,
        hours,
        notify_outbox=dispatcher.wake,
        facebook_human_agent=settings.facebook_human_agent,
    )
    turns = TurnEngine(
        store,
        models.get,
        build_policy(settings, catalog, desk.availability),
        max_message_chars=settings.max_message_chars,
        on_outbox=dispatcher.wake,
        push_channels=dispatcher.senders.keys(),
        fault_delay_seconds=settings.fault_turn_delay_ms / 1000,
        events=events,
        missed_review_below=settings.missed_review_below,
        sender_limits=SenderLimits(settings.inbound_burst, settings.inbound_per_minute),
    )
    staff = StaffStore(session_factory(database))
    live = LiveContent(
        settings,
        content,
        apply_faq=lambda entries: turns.policy.use_responses(build_catalog(settings, entries)),
        load_model=load_model,
        swap_model=models.swap,
        loaded_model_hash=models.data_hash,
    )
    await live.start()
    editor = ContentEditor(content, live, live.on_change)
    stats = StatsStore(
        session_factory(database),
        units=sorted(live.unit_names()),
        topic_titles=lambda: {key: str(data.get("title", key)) for key, data in live.faq.items()},
    )
    return Services(
        settings,
        store,
        staff,
        models,
        turns,
        dispatcher,
        database,
        cases,
        desk,
        channel_state,
        content,
        live,
        editor,
        stats,
        telegram=telegram,
        zalo_tokens=zalo_tokens,
    )


async def seed_canned_replies(settings: Settings, cases: CaseStore) -> None:
    """The starting canned replies (``data/canned_replies.yml``), once."""
    if not settings.canned_replies_file.exists():
        return
    loaded = read_yaml(settings.canned_replies_file) or {}
    entries = loaded.get("canned_replies") if isinstance(loaded, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{settings.canned_replies_file}: expected 'canned_replies:' list")
    replies = [(str(e["title"]), str(e["text"]).strip()) for e in entries]
    await cases.do_seed_canned_replies(replies)


async def relay_console_events(services: Services) -> None:
    """With PostgreSQL, live console events cross workers through LISTEN/NOTIFY."""
    if not supports_notify(services.settings.database_url):
        return
    hub = services.desk.events

    async def reload_consoles() -> None:
        hub.tell_everyone_to_reload()

    relay = PgNotifyRelay(services.settings.database_url, hub.receive, reload_consoles)
    await relay.start()
    hub.relay_through(relay, services.store.get_message_text)
    services.relay = relay


async def close_services(services: Services) -> None:
    if services.relay is not None:
        await services.relay.stop()
    await services.live.stop()
    for task in services.tasks:
        task.cancel()
    for task in services.tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await services.dispatcher.close()
    for closeable in (*services.dispatcher.senders.values(), services.turns.policy.actions):
        close = getattr(closeable, "close", None)  # HTTP clients of senders and actions
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
    await services.database.dispose()


async def chat_in_terminal(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    """``donghanh chat``: the terminal channel on the same engine, without a server."""
    services = await open_services(settings)
    try:
        return await run_terminal_chat(services.turns, stdin, stdout)
    finally:
        await close_services(services)


async def _handoff_loop(services: Services) -> None:
    """Tell people who have waited long for a counsellor that they are not forgotten."""
    settings = services.settings
    after = timedelta(minutes=settings.handoff_update_minutes)
    every = max(1.0, min(30.0, after.total_seconds() / 4))
    while True:
        await asyncio.sleep(every)
        try:
            await services.desk.send_waiting_updates(after, settings.handoff_max_updates)
        except Exception:
            logger.exception("waiting updates failed", extra={"event": "handoff_error"})


async def _recovery_loop(services: Services) -> None:
    while True:
        try:
            await services.turns.recover(older_than=RECOVERY_GRACE)
        except Exception:
            logger.exception("recovery failed", extra={"event": "recovery_error"})
        await asyncio.sleep(services.settings.recovery_interval_seconds)


def _services(request: Request) -> Services:
    services: Services = request.app.ctx.services
    return services


def _store(request: Request) -> Store:
    return _services(request).store


def _staff(request: Request) -> StaffStore:
    return _services(request).staff


def auth_settings(settings: Settings) -> auth.AuthSettings:
    secret = hashlib.sha256(b"donghanh-csrf\0" + settings.pseudonym_secret.encode()).digest()
    return auth.AuthSettings(
        csrf_secret=secret,
        cookie_secure=settings.cookie_secure,
        lock_after_failures=settings.login_lock_after_failures,
        lock_for=timedelta(minutes=settings.login_lock_minutes),
        attempts_per_window=settings.login_attempts_per_window,
    )


def _console(request: Request) -> console.ConsoleDeps:
    services = _services(request)
    return console.ConsoleDeps(services.desk, services.cases, services.store, services.staff)


def _availability(request: Request, staff_id: int) -> Awaitable[tuple[bool, bool]]:
    return _services(request).cases.get_availability(staff_id)


def _content(request: Request) -> content_api.ContentDeps:
    services = _services(request)
    return content_api.ContentDeps(
        editor=services.editor,
        live=services.live,
        content=services.content,
        store=services.store,
        faq_review_max_days=services.settings.faq_review_max_days,
        service_verify_max_days=services.settings.service_verify_max_days,
    )


def _stats(request: Request) -> StatsStore:
    return _services(request).stats


def _channel_state(request: Request) -> ChannelStateStore:
    return _services(request).channel_state


def _turns(request: Request) -> TurnEngine:
    return _services(request).turns


async def _ping(request: Request) -> None:
    await ping(_services(request).database)


def _model_info(request: Request) -> dict[str, str]:
    return _services(request).models.info()


def _interpreter(request: Request) -> ClassifierInterpreter:
    return _services(request).models.get()


def _add_security_headers(response: HTTPResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    headers.setdefault("Cache-Control", "no-store")


async def register_telegram_webhook(settings: Settings, address: str) -> tuple[str, Path]:
    """``donghanh telegram set-webhook``: register the https address under a new
    secret token (kept in the instance secrets) and publish the command menu."""
    if not settings.telegram_token:
        raise ConfigError("DONGHANH_TELEGRAM_TOKEN is not set (the token BotFather gave you)")
    from bot.channels.telegram import handler as telegram_channel
    from bot.channels.telegram.sender import make_bot

    url = telegram_channel.webhook_url(address)
    secret = secrets.token_urlsafe(32)
    bot = make_bot(settings.telegram_token, settings.telegram_base_url)
    try:
        await telegram_channel.register_webhook(bot, url, secret)
    finally:
        await bot.shutdown()
    return url, store_instance_secret(settings.instance_dir, "telegram_secret_token", secret)


def _telegram_inbound(request: Request) -> telegram_channel.TelegramInbound:
    inbound = _services(request).telegram
    assert inbound is not None  # the route is mounted only when Telegram is configured
    return inbound


def mount_platform_channels(app: Sanic[Any, Any], settings: Settings) -> None:
    """The webhooks of the platforms whose credentials are set; each other one is
    logged once as off."""
    configured = platform_channels_configured(settings)
    max_bytes = settings.request_max_bytes
    webhook_ready = configured[telegram_package.CHANNEL] and settings.telegram_secret_token
    if webhook_ready:
        from bot.channels.telegram import handler as telegram_channel

        app.blueprint(
            telegram_channel.create_blueprint(
                _telegram_inbound,
                _turns,
                secret_token=settings.telegram_secret_token,
                max_bytes=max_bytes,
            )
        )
    if configured[facebook_channel.CHANNEL]:
        app.blueprint(
            facebook_channel.create_blueprint(
                _turns,
                app_secret=settings.facebook_app_secret,
                verify_token=settings.facebook_verify_token,
                max_bytes=max_bytes,
            )
        )
    if configured[zalo_channel.CHANNEL]:
        app.blueprint(
            zalo_channel.create_blueprint(
                _turns,
                app_id=settings.zalo_app_id,
                secret_key=settings.zalo_secret_key,
                max_age_seconds=settings.webhook_max_age_seconds,
                max_bytes=max_bytes,
            )
        )
    for channel, ready in configured.items():
        if not ready:
            logger.info("channel off", extra={"event": "channel_off", "channel": channel})
    if configured[telegram_package.CHANNEL] and not webhook_ready:
        logger.info(
            "telegram webhook off: no secret token (donghanh telegram set-webhook)",
            extra={"event": "channel_off", "channel": "telegram_webhook"},
        )


def create_app(settings: Settings) -> Sanic[Any, Any]:
    configure_logging(settings.log_level)  # again in each worker process Sanic starts
    app = Sanic(f"donghanh_{next(_app_numbers)}", configure_logging=False)
    app.config.REQUEST_MAX_SIZE = settings.request_max_bytes
    app.config.WEBSOCKET_MAX_SIZE = webchat_channel.MAX_FRAME_BYTES
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    app.config.OAS = False  # the API issue serves its own OpenAPI document; no CDN UI
    app.config.AUTO_EXTEND = False  # Sanic Extensions is unused: 1-3 s less at start
    sessions = webchat_channel.WebChatSessions()

    @app.before_server_start
    async def open_resources(app: Sanic[Any, Any]) -> None:
        senders: dict[str, Sender] = {webchat_channel.CHANNEL: sessions}
        if settings.callback_url:
            senders[callback_channel.CHANNEL] = callback_channel.CallbackSender(
                settings.callback_url
            )
        app.ctx.services = await open_services(settings, senders, platform_channels=True)
        await relay_console_events(app.ctx.services)

    @app.after_server_start
    async def start_background_work(app: Sanic[Any, Any]) -> None:
        services: Services = app.ctx.services
        services.tasks.append(asyncio.create_task(services.dispatcher.run_forever()))
        services.tasks.append(asyncio.create_task(_recovery_loop(services)))
        services.tasks.append(asyncio.create_task(_handoff_loop(services)))
        services.tasks.append(asyncio.create_task(services.live.poll_forever()))
        services.tasks.append(
            asyncio.create_task(
                purge_daily(services.store.sessions, services.store.vault, services.settings)
            )
        )
        if services.zalo_tokens is not None:
            services.tasks.append(asyncio.create_task(services.zalo_tokens.run_forever()))
        if settings.telegram_polling and services.telegram is not None:
            from bot.channels.telegram import handler as telegram_channel

            polling = telegram_channel.poll_forever(services.telegram, services.turns)
            services.tasks.append(asyncio.create_task(polling))
        logger.info("worker ready", extra={"event": "worker_ready"})  # each worker, with its pid

    @app.after_server_stop
    async def close_resources(app: Sanic[Any, Any]) -> None:
        await close_services(app.ctx.services)

    @app.on_request
    async def start_timer(request: Request) -> None:
        request.ctx.started = time.perf_counter()

    @app.on_response
    async def finish(request: Request, response: HTTPResponse) -> None:
        _add_security_headers(response)
        started = getattr(request.ctx, "started", None)
        logger.info(
            "request",
            extra={
                "event": "http",
                "method": request.method,
                "route": request.route.path if request.route else "-",
                "status": response.status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
            },
        )

    register_error_handlers(app)
    app.blueprint(rest_channel.create_blueprint(_turns, settings.request_max_bytes))
    app.blueprint(webchat_channel.create_blueprint(_turns, sessions))
    if settings.callback_url:
        app.blueprint(callback_channel.create_blueprint(_turns, settings.request_max_bytes))
    else:
        logger.info("callback channel off", extra={"event": "channel_off", "channel": "callback"})
    mount_platform_channels(app, settings)
    app.blueprint(health.create_blueprint(_ping, _model_info))
    app.blueprint(parse.create_blueprint(_interpreter, settings.request_max_bytes))
    app.blueprint(pages.create_blueprint())
    app.blueprint(auth.create_blueprint(_staff, _store, auth_settings(settings), _availability))
    app.blueprint(console.create_blueprint(_console, _staff, auth_settings(settings)))
    app.blueprint(admin.create_blueprint(_channel_state, _staff, auth_settings(settings)))
    app.blueprint(content_api.create_blueprint(_content, _staff, auth_settings(settings)))
    app.blueprint(stats_api.create_blueprint(_stats, _staff, auth_settings(settings)))
    app.blueprint(openapi.create_blueprint())
    app.static("/static", Path(__file__).parent / "web" / "static", name="static")
    return app
