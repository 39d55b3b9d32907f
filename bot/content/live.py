"""The content a worker answers with, kept in step with what editors publish.

``LiveContent`` seeds the database from the shipped files on a first run (``data/faq``,
the FAQ examples in ``data/nlu/faq.yml``, ``services_directory/``), loads the published
FAQ and directory, and hands them to the engine. Every ``content_poll_seconds`` it reads
the content revision; when it moved (a publish here or in another worker), it reloads.

It also keeps the NLU model in step with the published examples. The wanted model is
the one trained on ``data/nlu`` with the database's examples (``write_training_dir``);
when the model in use was trained on other data, one worker retrains in a separate
process (``python -m bot.nlu.retrain``) while everyone keeps answering with the old
model. The candidate is installed only if it scores no worse on the held-out test data
than the model in use (beyond ``retrain_max_accuracy_drop``); then the model folder's
``CURRENT`` pointer moves, and each worker loads the new model fully before swapping
it in with one assignment, so no turn sees a half-loaded model. Every run is recorded
(``training_runs``) with its progress and verdict for the admin page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import services_directory
from bot.config import Settings
from bot.content.editing import FAQ, SERVICE, Change, entry_from_data
from bot.content.files import faq_files_data
from bot.domain import FaqEntry
from bot.nlu.interpreter import ClassifierInterpreter
from bot.nlu.training import (
    CURRENT_FILE,
    FAQ_EXAMPLES_FILE,
    current_model_path,
    training_data_hash,
    training_intents,
    write_training_dir,
)
from bot.storage.content import ContentStore

logger = logging.getLogger("donghanh.content")
PROGRESS_PREFIX = "progress "
RESULT_PREFIX = "result "
PURGE_EVERY_SECONDS = 3600.0


class LiveContent:
    def __init__(
        self,
        settings: Settings,
        store: ContentStore,
        *,
        apply_faq: Callable[[list[FaqEntry]], None],
        load_model: Callable[[], ClassifierInterpreter],
        swap_model: Callable[[ClassifierInterpreter], None],
        loaded_model_hash: Callable[[], str],
    ) -> None:
        self.settings = settings
        self.store = store
        self._apply_faq = apply_faq
        self._load_model = load_model
        self._swap_model = swap_model
        self._loaded_model_hash = loaded_model_hash
        self.revision = -1
        self.faq: dict[str, dict[str, Any]] = {}  # published, not retired: key -> data
        self.services: dict[str, dict[str, Any]] = {}
        self.added_examples: dict[str, list[str]] = {}
        self.file_intents = training_intents(settings.nlu_data_dir)
        self.units = services_directory.read_units()
        self.wanted_hash = ""
        self._changed_at = float("-inf")  # when the examples last changed (monotonic)
        self.waiting = False  # a retrain is due once the examples are still
        self._retraining: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- facts the linter checks against (ContentFacts) --------------------------------

    def known_intents(self) -> set[str]:
        core = {i for i in self.file_intents if not i.startswith(f"{FAQ}/")}
        return core | {f"{FAQ}/{key}" for key in self.faq}

    def known_phones(self) -> set[str]:
        return self.directory().phones()

    def unit_names(self) -> set[str]:
        return {unit.name for unit in self.units}

    def faq_examples(self) -> dict[str, list[str]]:
        return {key: list(data.get("examples") or []) for key, data in self.faq.items()}

    def topics_with_button_to(self, key: str) -> list[str]:
        target = f"/{FAQ}/{key}"
        return sorted(
            other
            for other, data in self.faq.items()
            if other != key
            and any(str(b.get("payload", "")).startswith(target) for b in data.get("buttons", []))
        )

    def directory(self) -> services_directory.Directory:
        return services_directory.Directory(
            [services_directory.service_from_record(_dated(d)) for d in self.services.values()],
            self.units,
        )

    # -- seeding and reloading ------------------------------------------------------------

    async def seed_from_files(self) -> None:
        await seed_shipped_content(self.settings, self.store)

    async def start(self) -> None:
        await self.seed_from_files()
        await self.refresh(force=True)

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload if the published content moved; then make sure the model follows."""
        revision = await self.store.get_revision()
        if revision == self.revision and not force:
            await self._adopt_installed_model()
            return False
        async with self._lock:
            await self._reload(revision)
        await self._adopt_installed_model()
        self.ensure_model_follows()
        return True

    async def _reload(self, revision: int) -> None:
        faq = {v.key: v.data for v in await self.store.get_published(FAQ) if not v.retired}
        services = {v.key: v.data for v in await self.store.get_published(SERVICE) if not v.retired}
        self.added_examples = await self.store.get_added_examples()
        self.faq, self.services = faq, services
        self._apply_faq([entry_from_data(key, data) for key, data in sorted(faq.items())])
        services_directory.use_directory(self.directory())
        with tempfile.TemporaryDirectory() as folder:
            wanted = training_data_hash(self._training_dir(Path(folder) / "data"))
        if wanted != self.wanted_hash:
            self._changed_at = time.monotonic()
        self.wanted_hash = wanted
        self.revision = revision
        logger.info(
            "content loaded",
            extra={"event": "content_loaded", "revision": revision, "faq": len(faq)},
        )

    def _training_dir(self, folder: Path) -> Path:
        return write_training_dir(
            self.settings.nlu_data_dir, folder, self.faq_examples(), self.usable_added_examples()
        )

    def usable_added_examples(self) -> dict[str, list[str]]:
        """Added examples of intents the bot still has (not of a retired topic)."""
        known = self.known_intents()
        return {i: texts for i, texts in self.added_examples.items() if i in known}

    async def on_change(self, change: Change) -> None:
        """Something was just published here: reload now rather than at the next poll."""
        await self.refresh(force=True)

    async def poll_forever(self) -> None:
        next_purge = 0.0
        while True:
            await asyncio.sleep(self.settings.content_poll_seconds)
            try:
                await self.refresh()
                if time.monotonic() >= next_purge:
                    await self.purge_old_missed()
                    next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            except Exception as exc:  # the database may be away for a while: keep polling
                logger.warning(
                    "content refresh failed",
                    extra={"event": "content_refresh_failed", "error_type": type(exc).__name__},
                )

    async def purge_old_missed(self) -> int:
        """Missed messages older than ``missed_retention_days`` are deleted."""
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.missed_retention_days)
        purged = await self.store.do_purge_missed(cutoff)
        if purged:
            logger.info("missed purged", extra={"event": "missed_purged", "count": purged})
        return purged

    # -- the model ----------------------------------------------------------------------

    def installed_model_hash(self) -> str:
        path = current_model_path(self.settings.model_dir)
        return path.name if path else ""

    async def _adopt_installed_model(self) -> None:
        """Another worker installed a new model: load it fully, then swap it in."""
        installed = self.installed_model_hash()
        if not installed or installed == self._loaded_model_hash():
            return
        interpreter = await asyncio.to_thread(self._load_warm_model)
        self._swap_model(interpreter)
        logger.info("model swapped", extra={"event": "model_swapped", "model": installed})

    def _load_warm_model(self) -> ClassifierInterpreter:
        interpreter = self._load_model()
        interpreter.parse("xin chào")
        return interpreter

    @property
    def model_is_current(self) -> bool:
        return self.installed_model_hash() == self.wanted_hash

    def ensure_model_follows(self, requested_by: int | None = None) -> None:
        """Start bringing the model in line with the content, unless it is or a run
        is already doing so (that run checks again when it ends)."""
        if self.model_is_current or (self._retraining and not self._retraining.done()):
            return
        self._retraining = asyncio.get_running_loop().create_task(self._follow(requested_by))

    async def wait_for_training(self) -> None:
        if self._retraining is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._retraining

    async def stop(self) -> None:
        if self._retraining is not None and not self._retraining.done():
            self._retraining.cancel()
            await self.wait_for_training()

    async def _follow(self, requested_by: int | None) -> None:
        """Retrain until the model matches the content, once the content has been
        still for ``retrain_delay_seconds`` (an editor publishing several topics in a
        row costs one retrain); data that was refused or failed once is not tried again
        by itself (an admin can ask: POST /api/v1/training)."""
        await self._quiet_content()
        tried: set[str] = set()
        while not self.model_is_current and self.wanted_hash not in tried:
            wanted = self.wanted_hash
            tried.add(wanted)
            if (self.settings.model_dir / wanted).is_dir():  # a rollback to a kept model
                point_current_at(self.settings.model_dir, wanted)
                await self._adopt_installed_model()
                continue
            await self._retrain(wanted, requested_by)

    def _quiet_for(self) -> float:
        """Seconds left until the examples have been still for the retrain delay."""
        return self._changed_at + self.settings.retrain_delay_seconds - time.monotonic()

    async def _quiet_content(self) -> None:
        """Sleep until no change came for the retrain delay (a change meanwhile moves
        the end: each sleep is only as long as what is left of it)."""
        wait = self._quiet_for()
        self.waiting = wait > 0
        try:
            while wait > 0:
                await asyncio.sleep(wait)
                wait = self._quiet_for()
        finally:
            self.waiting = False

    async def _retrain(self, wanted: str, requested_by: int | None) -> None:
        run_id = await self.store.do_start_training(wanted, requested_by)
        if run_id is None:
            return  # another worker is training this very data
        work = self.settings.instance_dir / "nlu-training" / str(run_id)
        try:
            await self._run_training(run_id, work)
        except asyncio.CancelledError:
            await self.store.do_finish_training(
                run_id, "failed", "dịch vụ dừng khi đang huấn luyện", {}
            )
            raise
        except Exception as exc:
            logger.error(
                "retraining failed",
                extra={"event": "retrain_failed", "error_type": type(exc).__name__},
            )
            await self.store.do_finish_training(
                run_id, "failed", f"huấn luyện thất bại ({type(exc).__name__})", {}
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _run_training(self, run_id: int, work: Path) -> None:
        data_dir = self._training_dir(work / "data")
        verdict = await self._train_candidate(run_id, data_dir, work / "model")
        refusal = self.refusal(verdict)
        if refusal:
            await self.store.do_finish_training(run_id, "refused", refusal, verdict)
            logger.warning("retrained model refused", extra={"event": "retrain_refused"})
            return
        await self.store.do_report_training(run_id, 95, "installing")
        install_model(Path(verdict["model_path"]), self.settings.model_dir)
        await self._adopt_installed_model()
        await self.store.do_finish_training(run_id, "installed", None, verdict)
        logger.info(
            "retrained model installed",
            extra={"event": "retrain_installed", "model": verdict.get("data_hash")},
        )

    async def _train_candidate(self, run_id: int, data_dir: Path, out_dir: Path) -> dict[str, Any]:
        command = [
            sys.executable,
            "-m",
            "bot.nlu.retrain",
            "--data",
            str(data_dir),
            "--out",
            str(out_dir),
            "--test",
            str(self.settings.nlu_data_dir / "test"),
            "--current",
            str(self.settings.model_dir),
        ]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        verdict: dict[str, Any] | None = None
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith(PROGRESS_PREFIX):
                    percent, _, stage = line.removeprefix(PROGRESS_PREFIX).partition(" ")
                    await self.store.do_report_training(run_id, int(percent), stage)
                elif line.startswith(RESULT_PREFIX):
                    verdict = json.loads(line.removeprefix(RESULT_PREFIX))
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.wait()
        if process.returncode != 0 or verdict is None:
            raise RuntimeError(f"training process ended with {process.returncode}")
        return verdict

    def refusal(self, verdict: dict[str, Any]) -> str | None:
        """Why the candidate may not replace the model in use (None if it may)."""
        margin = self.settings.retrain_max_accuracy_drop
        for variant, current in (verdict.get("current") or {}).items():
            candidate = (verdict.get("candidate") or {}).get(variant)
            if candidate is not None and candidate < current - margin:
                return (
                    f"mô hình mới kém hơn mô hình đang dùng trên dữ liệu kiểm tra "
                    f"({_variant_label(variant)}): {candidate:.1%} so với {current:.1%}, "
                    f"chỉ cho phép giảm tối đa {margin:.1%}. Hãy xem lại các câu mẫu vừa sửa."
                )
        return None

    # -- status for the admin page ----------------------------------------------------------

    async def training_status(self) -> dict[str, Any]:
        runs = await self.store.get_training_runs()
        return {
            "model": {
                "in_use": self._loaded_model_hash(),
                "wanted": self.wanted_hash,
                "current": self._loaded_model_hash() == self.wanted_hash,
            },
            "training": bool(self._retraining and not self._retraining.done())
            or any(run["state"] == "running" for run in runs[:1]),
            "waiting": self.waiting,
            "last": runs[0] if runs else None,
            "recent": runs,
        }


async def seed_shipped_content(settings: Settings, store: ContentStore) -> tuple[int, int]:
    """The shipped content, published once, on a database that has none: FAQ topics
    with their examples, and the directory. Returns how many of each were written."""
    faq_written = services_written = 0
    if not await store.count_versions(FAQ):  # reading the files is for a first run only
        faq = faq_files_data(settings.faq_dir, settings.nlu_data_dir / FAQ_EXAMPLES_FILE)
        faq_written = await store.do_seed(FAQ, sorted(faq.items()))
    if not await store.count_versions(SERVICE):
        directory = services_directory.shipped_directory()
        services = [(s.id, service_data(s)) for s in directory.services]
        services_written = await store.do_seed(SERVICE, services)
    if faq_written or services_written:
        logger.info(
            "content seeded",
            extra={"event": "content_seeded", "faq": faq_written, "services": services_written},
        )
    return faq_written, services_written


def point_current_at(model_dir: Path, name: str) -> None:
    pointer = model_dir / f".{CURRENT_FILE}.installing"
    pointer.write_text(name, encoding="utf-8")
    pointer.replace(model_dir / CURRENT_FILE)


def install_model(candidate: Path, model_dir: Path) -> None:
    """Copy the candidate into the model folder and point ``CURRENT`` at it (atomic
    rename); the model before it is kept, older ones go."""
    model_dir.mkdir(parents=True, exist_ok=True)
    previous = current_model_path(model_dir)
    final = model_dir / candidate.name
    if not final.exists():
        staging = model_dir / f".installing-{candidate.name}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(candidate, staging)
        staging.replace(final)
    point_current_at(model_dir, candidate.name)
    keep = {candidate.name, previous.name if previous else ""}
    for child in model_dir.iterdir():
        if child.is_dir() and child.name not in keep and not child.name.startswith("."):
            shutil.rmtree(child, ignore_errors=True)


def _variant_label(variant: str) -> str:
    return "câu không dấu" if variant == "no_diacritics" else "câu có dấu"


def _dated(data: dict[str, Any]) -> dict[str, Any]:
    verified = data.get("verified_at")
    if isinstance(verified, str):
        return {**data, "verified_at": date.fromisoformat(verified)}
    return data


def service_data(service: services_directory.Service) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": service.id,
        "name": service.name,
        "kind": service.kind,
        "provinces": list(service.provinces),
        "helps_with": service.helps_with,
        "source": service.source,
        "rank": service.rank,
    }
    optional = {
        "phone": service.phone,
        "website": service.website,
        "address": service.address,
        "hours": service.hours,
        "free": service.free,
        "languages": list(service.languages) or None,
        "verified_at": service.verified_at.isoformat() if service.verified_at else None,
        "needs_reverification": service.needs_reverification or None,
        "admin_note": service.admin_note,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return data
