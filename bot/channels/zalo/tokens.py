"""The Zalo OA access token, kept fresh.

Zalo's access tokens last about a day; the refresh token, used once, gives a new pair.
The pair is stored encrypted (``channel_credentials``) so a restart, or another
worker, uses the newest one; a lease makes sure only one worker spends the refresh
token. A token is refreshed an hour before it expires, or at once when Zalo says it
is no longer valid. A failed refresh opens an alert for admins (``GET
/api/v1/admin/alerts``) and is logged as an error; it is retried every few minutes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx

from bot.storage.channel_state import ChannelStateStore, Credentials
from bot.storage.models import utcnow

CHANNEL = "zalo"
REFRESH_BEFORE = timedelta(hours=1)
LEASE = timedelta(seconds=60)
CHECK_EVERY_SECONDS = 300.0
ALERT_KIND = "token_refresh_failed"
REFRESH_PATH = "/v4/oa/access_token"
logger = logging.getLogger("donghanh.channels.zalo")


class TokenRefreshError(Exception):
    """Zalo did not give a new pair; the reason names a code, never a token."""


class ZaloTokens:
    def __init__(
        self,
        state: ChannelStateStore,
        *,
        app_id: str,
        app_secret: str,
        oauth_url: str,
        access_token: str,
        refresh_token: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.state = state
        self.app_id = app_id
        self.app_secret = app_secret
        self._configured = (access_token, refresh_token)
        self._url = oauth_url.rstrip("/") + REFRESH_PATH
        self._client = httpx.AsyncClient(timeout=15.0, transport=transport)
        self._current: Credentials | None = None
        self._lock = asyncio.Lock()

    @property
    def can_refresh(self) -> bool:
        return bool(self.app_secret and self._configured[1])

    async def start(self) -> None:
        access, refresh = self._configured
        self._current = await self.state.do_seed_credentials(CHANNEL, access, refresh)

    async def access_token(self) -> str:
        current = await self._ensure_started()
        if self._due(current):
            await self.refresh_if_due()
            current = await self._ensure_started()
        return current.access_token

    async def _ensure_started(self) -> Credentials:
        if self._current is None:
            await self.start()
        assert self._current is not None
        return self._current

    def _due(self, current: Credentials) -> bool:
        if not self.can_refresh:
            return False
        return current.expires_at is None or current.expires_at - utcnow() < REFRESH_BEFORE

    async def refresh_if_due(self) -> None:
        async with self._lock:
            stored = await self.state.get_credentials(CHANNEL)
            if stored is not None:
                self._current = stored  # another worker may have refreshed already
            if self._current is not None and self._due(self._current):
                await self._refresh()

    async def refresh_after_rejection(self, rejected: str) -> None:
        """Zalo refused ``rejected``: refresh now, unless someone already did."""
        async with self._lock:
            stored = await self.state.get_credentials(CHANNEL)
            if stored is not None and stored.access_token != rejected:
                self._current = stored
                return
            if self.can_refresh:
                await self._refresh()

    async def _refresh(self) -> None:
        seen = self._current
        claimed = await self.state.do_claim_refresh(CHANNEL, LEASE)
        if claimed is None:
            return  # another worker is refreshing; its pair is read next time
        if seen is not None and claimed.refresh_token != seen.refresh_token:
            # another worker refreshed between our read and our claim: use its pair
            await self.state.do_release_refresh(CHANNEL)
            self._current = claimed
            return
        try:
            access, refresh, expires_at = await self._ask_zalo(claimed.refresh_token)
        except TokenRefreshError as exc:
            # raised while the lease is held, so two workers never open it twice
            await self.state.do_raise_alert(ALERT_KIND, CHANNEL, str(exc))
            await self.state.do_release_refresh(CHANNEL)
            logger.error(
                "zalo token refresh failed",
                extra={"event": "token_refresh_failed", "channel": CHANNEL, "reason": str(exc)},
            )
            return
        await self.state.do_save_refreshed(CHANNEL, access, refresh, expires_at)
        await self.state.do_resolve_alerts(ALERT_KIND, CHANNEL)
        self._current = Credentials(access, refresh, expires_at)
        logger.info("zalo token refreshed", extra={"event": "token_refreshed", "channel": CHANNEL})

    async def _ask_zalo(self, refresh_token: str) -> tuple[str, str, datetime]:
        try:
            response = await self._client.post(
                self._url,
                headers={"secret_key": self.app_secret},
                data={
                    "refresh_token": refresh_token,
                    "app_id": self.app_id,
                    "grant_type": "refresh_token",
                },
            )
        except httpx.HTTPError as exc:
            raise TokenRefreshError(f"Zalo OAuth unreachable: {type(exc).__name__}") from exc
        try:
            data = response.json()
        except ValueError as exc:
            raise TokenRefreshError(f"Zalo OAuth answered {response.status_code}") from exc
        if not isinstance(data, dict):
            raise TokenRefreshError(f"Zalo OAuth answered {response.status_code}")
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if response.status_code >= 300 or not isinstance(access, str) or not access:
            code = data.get("error", response.status_code)
            name = str(data.get("error_name") or "")[:80]
            raise TokenRefreshError(f"Zalo OAuth refused the refresh token (error {code} {name})")
        try:
            lifetime = int(data.get("expires_in", 0))
        except (TypeError, ValueError):
            lifetime = 0
        new_refresh = refresh if isinstance(refresh, str) and refresh else refresh_token
        return access, new_refresh, utcnow() + timedelta(seconds=max(lifetime, 0))

    async def run_forever(self) -> None:
        """Refresh ahead of expiry; retried every few minutes after a failure."""
        if not self.can_refresh:
            logger.warning(
                "zalo token refresh off",
                extra={"event": "token_refresh_off", "channel": CHANNEL},
            )
            return
        while True:
            try:
                await self.refresh_if_due()
            except Exception:
                logger.exception("zalo token check failed", extra={"event": "token_error"})
            await asyncio.sleep(CHECK_EVERY_SECONDS)

    async def close(self) -> None:
        await self._client.aclose()
