"""Staff authentication for the console and the API (``/api/v1/auth/*``, ``/api/v1/me``).

- Passwords are argon2 hashes; an unknown user costs the same verification as a known
  one, and every failure gets the same answer.
- A login creates a new server-side session (a fresh random token in an HttpOnly,
  SameSite=Strict cookie, Secure when configured; only its hash is stored), so a
  session id fixed before login is worthless; any session the browser held is ended.
- Every write needs the CSRF token given at login in ``X-CSRF-Token`` (an HMAC of the
  session token, compared in constant time).
- Five failures in a row lock the account for a while (its sessions end); attempts
  from one address are rate-limited too. Logins, failures and logouts are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, wraps
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot.bodies import decode_json_object, require_string
from bot.domain import StaffMember
from bot.errors import Forbidden, TooManyRequests, Unauthorized
from bot.storage.models import utcnow
from bot.storage.passwords import hash_password, verify_password
from bot.storage.repository import StaffStore, Store

SESSION_COOKIE = "dh_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_BODY_BYTES = 4096
# one answer for every refused login (an unknown name, a wrong password, a locked
# account), so it never tells which usernames exist
BAD_LOGIN = "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang tạm khóa. Hãy thử lại sau."


@cache
def _dummy_hash() -> str:
    """Verifying against this when the user does not exist takes as long as a real
    check, so the answer time does not tell which usernames exist."""
    return hash_password(secrets.token_urlsafe(24))


@dataclass(frozen=True)
class AuthSettings:
    csrf_secret: bytes
    cookie_secure: bool = False
    session_lifetime: timedelta = timedelta(hours=12)
    idle_timeout: timedelta = timedelta(hours=2)
    lock_after_failures: int = 5
    lock_for: timedelta = timedelta(minutes=15)
    attempts_per_window: int = 10
    window_seconds: int = 300


TOO_MANY_LOGINS = "Đăng nhập sai quá nhiều lần. Hãy thử lại sau."


def address_key(settings: AuthSettings, address: str) -> str:
    """What the login limit counts under: a keyed hash, never the address itself."""
    message = b"login-address:" + address.encode()
    return hmac.new(settings.csrf_secret, message, hashlib.sha256).hexdigest()


async def check_login_rate(staff_store: StaffStore, settings: AuthSettings, address: str) -> None:
    """At most ``attempts_per_window`` login attempts per address in a fixed window,
    counted in the database so that every worker shares the count (the account
    lockout holds across workers too)."""
    window = timedelta(seconds=settings.window_seconds)
    count, started = await staff_store.do_count_attempt(
        address_key(settings, address), window=window
    )
    if count > settings.attempts_per_window:
        retry = int((started + window - utcnow()).total_seconds()) + 1
        raise TooManyRequests(TOO_MANY_LOGINS, max(1, retry))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


StaffGetter = Callable[[Request], StaffStore]
StoreGetter = Callable[[Request], Store]


async def authenticate(request: Request, staff: StaffStore, settings: AuthSettings) -> StaffMember:
    """The member of the request's session; writes also need the CSRF token."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized("Cần đăng nhập.")
    member = await staff.get_session_member(token_hash(token), idle_timeout=settings.idle_timeout)
    if member is None:
        raise Unauthorized("Phiên đăng nhập đã hết hạn. Hãy đăng nhập lại.")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_token(settings.csrf_secret, token)):
            raise Forbidden("Thiếu hoặc sai mã CSRF.")
    return member


Handler = Callable[..., Awaitable[HTTPResponse]]


def requires(
    staff: StaffGetter, settings: AuthSettings, *roles: str
) -> Callable[[Handler], Handler]:
    """A route for logged-in staff with one of ``roles`` (any role when none given);
    the member is passed to the handler as ``member``."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            member = await authenticate(request, staff(request), settings)
            if roles and member.role not in roles:
                raise Forbidden("Bạn không có quyền làm việc này.")
            return await handler(request, *args, member=member, **kwargs)

        return guarded

    return decorate


# (said they are available, counts as on duty now: said so or has a console open)
AvailabilityGetter = Callable[[Request, int], Awaitable[tuple[bool, bool]]]


def create_blueprint(
    staff: StaffGetter, store: StoreGetter, settings: AuthSettings, available: AvailabilityGetter
) -> Blueprint:
    bp = Blueprint("api_auth", url_prefix="/api/v1")

    @bp.post("/auth/login")
    async def login(request: Request) -> HTTPResponse:
        await check_login_rate(staff(request), settings, request.remote_addr or request.ip or "?")
        data = decode_json_object(request.body, max_bytes=LOGIN_BODY_BYTES)
        username = require_string(data, "username", max_chars=64, allow_empty=False)
        password = require_string(data, "password", max_chars=256, allow_empty=False)
        member = await _check_credentials(staff(request), store(request), username, password)
        old = request.cookies.get(SESSION_COOKIE)
        if old:  # never carry a session id over a login
            await staff(request).do_delete_session(token_hash(old))
        token = secrets.token_urlsafe(32)
        await staff(request).do_create_session(
            member.id, token_hash(token), utcnow() + settings.session_lifetime
        )
        await store(request).do_append_audit("login", actor_id=member.id)
        response = json(
            {
                "csrf_token": csrf_token(settings.csrf_secret, token),
                "user": {
                    "id": member.id,
                    "username": member.username,
                    "role": member.role,
                    "may_publish": member.may_publish,
                },
            },
            ensure_ascii=False,
        )
        _set_session_cookie(response, token, settings)
        return response

    async def _check_credentials(
        staff_store: StaffStore, audit: Store, username: str, password: str
    ) -> StaffMember:
        record = await staff_store.get_login(username)
        if record is None:
            verify_password(_dummy_hash(), password)
            raise Unauthorized(BAD_LOGIN)
        if record.locked_until is not None and record.locked_until > utcnow():
            verify_password(_dummy_hash(), password)
            await audit.do_append_audit("login_refused_locked", actor_id=record.staff.id)
            raise Unauthorized(BAD_LOGIN)
        if not verify_password(record.password_hash, password) or not record.active:
            locked = await staff_store.do_record_login_failure(
                record.staff.id,
                lock_after=settings.lock_after_failures,
                lock_for=settings.lock_for,
            )
            await audit.do_append_audit(
                "login_failed", actor_id=record.staff.id, detail={"locked": locked}
            )
            raise Unauthorized(BAD_LOGIN)
        await staff_store.do_record_login_success(record.staff.id)
        return record.staff

    @bp.post("/auth/logout")
    @requires(staff, settings)
    async def logout(request: Request, member: StaffMember) -> HTTPResponse:
        await staff(request).do_delete_session(
            token_hash(str(request.cookies.get(SESSION_COOKIE) or ""))
        )
        await staff(request).do_go_off_duty(member.id)
        await store(request).do_append_audit("logout", actor_id=member.id)
        response = json({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @bp.get("/me")
    @requires(staff, settings)
    async def me(request: Request, member: StaffMember) -> HTTPResponse:
        said_available, on_duty = await available(request, member.id)
        return json(
            {
                "id": member.id,
                "username": member.username,
                "role": member.role,
                "may_publish": member.may_publish,
                "available": said_available,
                "on_duty": on_duty,
            },
            ensure_ascii=False,
        )

    @bp.get("/auth/csrf")
    @requires(staff, settings)
    async def csrf(request: Request, member: StaffMember) -> HTTPResponse:
        """The CSRF token again, for a console page that was reloaded."""
        token = str(request.cookies.get(SESSION_COOKIE) or "")
        return json({"csrf_token": csrf_token(settings.csrf_secret, token)})

    return bp


def _set_session_cookie(response: HTTPResponse, token: str, settings: AuthSettings) -> None:
    response.add_cookie(
        SESSION_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
        max_age=int(settings.session_lifetime.total_seconds()),
    )
