"""The ``donghanh`` command: setup, serve, chat, db, purge, keys, users, nlu.

Passwords are never taken from the command line (other users can read it): they come
from a prompt or from ``DONGHANH_NEW_PASSWORD``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bot.config import Settings, load_settings
from bot.domain import StaffRole
from bot.errors import BadInput, ConfigError, DataFormatError, DonghanhError
from bot.logs import configure_logging
from bot.nlu.tokenizer import TOKENIZERS

T = TypeVar("T")

PASSWORD_ENV = "DONGHANH_NEW_PASSWORD"  # noqa: S105 (a variable name, not a password)


def _settings(args: argparse.Namespace, *, create_secrets: bool = False) -> Settings:
    settings = load_settings(create_secrets=create_secrets)
    overrides = {
        k: getattr(args, k)
        for k in ("host", "port", "workers", "telegram_polling")
        if getattr(args, k, None) is not None
    }
    if overrides:
        settings = Settings(**{**settings.__dict__, **overrides})
    return settings


# -- db and users ---------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.storage.migrate import upgrade_database

    settings = _settings(args, create_secrets=True)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.database_url)
    print("Cơ sở dữ liệu đã ở phiên bản mới nhất.")
    return 0


async def _create_user(
    settings: Settings, username: str, role: str, password: str, *, reviewer: bool = False
) -> None:
    from bot.storage.crypto import Vault
    from bot.storage.db import create_engine, session_factory
    from bot.storage.passwords import hash_password
    from bot.storage.repository import Store

    database = create_engine(settings.database_url)
    try:
        store = Store(
            session_factory(database), Vault(settings.encryption_keys), settings.pseudonym_secret
        )
        if await store.check_staff_user_exists(username):
            raise BadInput(f"user {username!r} already exists")
        user_id = await store.do_create_staff_user(
            username, hash_password(password), role, reviewer=reviewer
        )
        await store.do_append_audit(
            "staff_user_created",
            target_type="staff_user",
            target_id=str(user_id),
            detail={"role": role},
        )
    finally:
        await database.dispose()


def _read_new_password() -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise BadInput(f"no terminal to ask for a password: set {PASSWORD_ENV}")
    first = getpass.getpass("Mật khẩu: ")
    if first != getpass.getpass("Nhập lại mật khẩu: "):
        raise BadInput("the two passwords differ")
    return first


def cmd_users_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.require_secrets()
    asyncio.run(
        _create_user(
            settings, args.username, args.role, _read_new_password(), reviewer=args.reviewer
        )
    )
    print(f"Đã tạo tài khoản {args.username} ({args.role}).")
    return 0


async def _ensure_first_admin(settings: Settings) -> str | None:
    from bot.storage.passwords import generate_password

    async def count(store: Any) -> int:
        return int(await store.count_staff_users())

    if await _open_store_and(settings, count):
        return None
    password = generate_password()
    await _create_user(settings, "admin", StaffRole.ADMIN.value, password)
    return password


async def _open_store_and(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from bot.storage.crypto import Vault
    from bot.storage.db import create_engine, session_factory
    from bot.storage.repository import Store

    database = create_engine(settings.database_url)
    try:
        store = Store(
            session_factory(database), Vault(settings.encryption_keys), settings.pseudonym_secret
        )
        return await work(store)
    finally:
        await database.dispose()


# -- retention and keys -------------------------------------------------------------


async def _open_sessions_and(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from bot.storage.db import create_engine, session_factory

    database = create_engine(settings.database_url)
    try:
        return await work(session_factory(database))
    finally:
        await database.dispose()


def cmd_purge(args: argparse.Namespace) -> int:
    from bot.storage.crypto import Vault
    from bot.storage.retention import RetentionPurger, describe

    settings = _settings(args)
    settings.require_secrets()

    async def purge(sessions: Any) -> Any:
        purger = RetentionPurger(sessions, Vault(settings.encryption_keys), settings)
        return await (purger.count_purgeable() if args.dry_run else purger.do_purge())

    report = asyncio.run(_open_sessions_and(settings, purge))
    print(
        f"Chính sách lưu giữ: nội dung cuộc trò chuyện không hoạt động "
        f"{settings.retention_days} ngày, bản ghi gửi tin {settings.outbox_retention_days} "
        f"ngày, tin nhắn chưa hiểu {settings.missed_retention_days} ngày, nhật ký kiểm tra "
        f"{settings.audit_retention_days} ngày."
    )
    print("Chạy thử, chưa xoá gì. Sẽ xoá:" if args.dry_run else "Đã xoá:")
    for line in describe(report):
        print(line)
    if report.failed:
        print(f"Lỗi khi xoá: {', '.join(report.failed)} (xem nhật ký).", file=sys.stderr)
        return 1
    return 0


def cmd_keys_new(args: argparse.Namespace) -> int:
    from bot.storage.keys import new_key

    print(new_key())
    print(
        "Đặt khoá này ĐẦU TIÊN trong DONGHANH_ENCRYPTION_KEYS (hoặc encryption_keys trong "
        "instance/secrets.yml), giữ các khoá cũ sau nó, khởi động lại dịch vụ, rồi chạy "
        "`donghanh keys rotate`.",
        file=sys.stderr,
    )
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from bot.storage.keys import KeyRotator, describe

    settings = _settings(args)
    settings.require_secrets()
    if args.batch_size < 1:
        raise BadInput("--batch-size must be at least 1")

    async def rotate(sessions: Any) -> Any:
        rotator = KeyRotator(sessions, settings.encryption_keys, batch_size=args.batch_size)
        return await rotator.do_rotate_all()

    report = asyncio.run(_open_sessions_and(settings, rotate))
    print("Mã hoá lại bằng khoá đầu tiên:")
    for line in describe(report):
        print(line)
    if report.undecryptable:
        print(
            f"{sum(report.undecryptable.values())} giá trị không giải mã được bằng khoá nào "
            "đã cấu hình (để nguyên). Đừng bỏ khoá cũ nào trước khi tìm ra nguyên nhân.",
            file=sys.stderr,
        )
        return 1
    print(
        f"Xong: {report.rotated} giá trị được mã hoá lại. Mọi dữ liệu đã dùng khoá đầu tiên; "
        "có thể bỏ các khoá cũ."
    )
    return 0


# -- content ----------------------------------------------------------------------------


def _faq_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.faq_dir) if getattr(args, "faq_dir", None) else settings.faq_dir


def _content_problems(settings: Settings, faq_dir: Path) -> list[Any]:
    from bot.content.check import check_content

    return check_content(faq_dir, settings.nlu_data_dir, settings.responses_file)


def _report_problems(problems: list[Any]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(problems)} lỗi nội dung.", file=sys.stderr)


def cmd_content_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    problems = _content_problems(settings, _faq_dir(args, settings))
    if problems:
        _report_problems(problems)
        return 1
    print("Nội dung hợp lệ.")
    return 0


async def _open_content_and(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from bot.storage.content import ContentStore
    from bot.storage.crypto import Vault
    from bot.storage.db import create_engine, session_factory

    database = create_engine(settings.database_url)
    try:
        return await work(ContentStore(session_factory(database), Vault(settings.encryption_keys)))
    finally:
        await database.dispose()


def cmd_content_load(args: argparse.Namespace) -> int:
    from bot.content.files import faq_files_data, import_faq
    from bot.content.live import seed_shipped_content
    from bot.nlu.training import FAQ_EXAMPLES_FILE

    settings = _settings(args)
    settings.require_secrets()
    faq_dir = _faq_dir(args, settings)
    problems = _content_problems(settings, faq_dir)
    if problems:
        _report_problems(problems)
        print("Chưa nạp gì: hãy sửa các lỗi trên.", file=sys.stderr)
        return 1
    topics = faq_files_data(faq_dir, settings.nlu_data_dir / FAQ_EXAMPLES_FILE)

    async def load(store: Any) -> int:
        published = await import_faq(store, topics)
        await seed_shipped_content(settings, store)  # a new database gets the directory too
        return published

    written = asyncio.run(_open_content_and(settings, load))
    print(
        f"Đã xuất bản {written} chủ đề FAQ có thay đổi. "
        "Dịch vụ đang chạy tự dùng nội dung mới sau vài giây."
    )
    return 0


def cmd_content_export(args: argparse.Namespace) -> int:
    from bot.content.files import export_content

    settings = _settings(args)
    settings.require_secrets()
    out = Path(args.directory)
    written = asyncio.run(_open_content_and(settings, lambda store: export_content(store, out)))
    print(f"Đã ghi {len(written)} tệp vào {out}.")
    return 0


async def _rasa_project(settings: Settings, store: Any) -> dict[str, Any]:
    import tempfile

    from bot.app import build_catalog
    from bot.content.editing import FAQ, entry_from_data
    from bot.content.rasa_export import build_rasa_project
    from bot.engine.actions import InProcessActionRunner
    from bot.nlu.rasa_yaml import read_nlu_dir
    from bot.nlu.training import write_training_dir

    published = [v for v in await store.get_published(FAQ) if not v.retired]
    examples = {v.key: list(v.data.get("examples") or []) for v in published}
    core = {i for i in read_nlu_dir(settings.nlu_data_dir).full_intents if "/" not in i}
    known = core | {f"{FAQ}/{key}" for key in examples}
    added = {i: t for i, t in (await store.get_added_examples()).items() if i in known}
    with tempfile.TemporaryDirectory() as folder:
        data_dir = write_training_dir(settings.nlu_data_dir, Path(folder) / "nlu", examples, added)
        nlu = read_nlu_dir(data_dir)
    catalog = build_catalog(settings, [entry_from_data(v.key, v.data) for v in published])
    project: dict[str, Any] = build_rasa_project(
        nlu, catalog, InProcessActionRunner(domain={}).names
    )
    return project


def cmd_export_rasa(args: argparse.Namespace) -> int:
    from bot.content.rasa_export import write_rasa_project

    settings = _settings(args)
    settings.require_secrets()
    project = asyncio.run(_open_content_and(settings, partial(_rasa_project, settings)))
    written = write_rasa_project(Path(args.directory), project)
    print(f"Đã xuất dự án Rasa ({len(written)} tệp) vào {args.directory}.")
    return 0


# -- nlu ------------------------------------------------------------------------------


def cmd_nlu_train(args: argparse.Namespace) -> int:
    from bot.nlu.training import ensure_model, train

    settings = _settings(args)
    data_dir = Path(args.data) if args.data else settings.nlu_data_dir
    out_dir = Path(args.out) if args.out else settings.model_dir
    print(f"Đang huấn luyện NLU từ {data_dir} …", flush=True)
    summary = ensure_model(data_dir, out_dir) if args.if_stale else train(data_dir, out_dir)
    if summary is None:
        print("Mô hình NLU đã cập nhật, không cần huấn luyện lại.")
        return 0
    print(
        f"Xong: {summary.examples} câu mẫu, {summary.intents} ý định, "
        f"{summary.seconds:.1f} giây -> {summary.model_path}"
    )
    return 0


def cmd_nlu_parse(args: argparse.Namespace) -> int:
    from bot.nlu.training import load_interpreter

    settings = _settings(args)
    interpreter = load_interpreter(
        Path(args.model) if args.model else settings.model_dir,
        settings.nlu_threshold,
        settings.cue_rules_file,
    )
    for line in sys.stdin:
        result = interpreter.parse(line.rstrip("\r\n"))
        print(json.dumps(result.as_rasa_dict(), ensure_ascii=False), flush=True)
    return 0


def cmd_nlu_evaluate(args: argparse.Namespace) -> int:
    from bot.nlu.classifier import IntentClassifier
    from bot.nlu.evaluation import evaluate_intents
    from bot.nlu.rasa_yaml import read_nlu_dir
    from bot.nlu.training import load_normalizer

    train_dir, test_dir = Path(args.train), Path(args.test)
    train_data = read_nlu_dir(train_dir)
    test_data = read_nlu_dir(test_dir, exclude=())
    classifier = IntentClassifier.train(
        [e.text for e in train_data.examples],
        [e.full_intent for e in train_data.examples],
        normalizer=load_normalizer(train_dir),
        tokenizer=args.tokenizer,
    )
    reports = evaluate_intents(lambda text: classifier.rank(text, 1)[0], test_data)
    if args.json:
        print(
            json.dumps({k: v.as_dict() for k, v in reports.items()}, ensure_ascii=False, indent=2)
        )
        return 0
    for variant, report in reports.items():
        print(
            f"== {variant}: {report.examples} câu, "
            f"accuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.1%}, "
            f"calibration error (ECE) {report.calibration_error or 0.0:.1%}"
        )
        for intent, scores in report.per_intent.items():
            print(
                f"  {intent:40} P {scores['precision']:.2f}  "
                f"R {scores['recall']:.2f}  n={scores['support']}"
            )
        for expected, predicted, count in report.confusions:
            print(f"  nhầm {expected} -> {predicted}: {count}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from bot.bench import bench_nlu, render_table, write_json

    out = Path(args.out) if args.out else None
    if args.suite != "nlu":  # the suites that run real servers
        from bot.benchmarks.suites import options_from_args, run_suite

        try:
            result = run_suite(args.suite, options_from_args(args))
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
        print(render_table(result.figures))
        for note in result.notes:
            print(note)
        print(f"JSON: {write_json(result.figures, args.suite, out, result.details)}")
        return 0
    settings = _settings(args)
    data_dir = Path(args.data) if args.data else settings.nlu_data_dir
    figures = bench_nlu(data_dir, settings.nlu_threshold, repeats=args.repeats)
    print(render_table(figures))
    print(f"JSON: {write_json(figures, args.suite, out)}")
    return 0


# -- setup, serve, chat ---------------------------------------------------------------


def cmd_setup(args: argparse.Namespace) -> int:
    """Everything ``make run`` needs before serving: secrets, schema, admin, model."""
    from bot.nlu.training import ensure_model
    from bot.storage.migrate import upgrade_database

    settings = _settings(args, create_secrets=True)
    upgrade_database(settings.database_url)
    password = asyncio.run(_ensure_first_admin(settings))
    problems = _content_problems(settings, settings.faq_dir)
    if problems:
        _report_problems(problems)
        return 1
    loaded = asyncio.run(_seed_content(settings))
    summary = ensure_model(settings.nlu_data_dir, settings.model_dir)
    print(f"Thư mục phiên bản: {settings.instance_dir}")
    print("Mô hình NLU: " + ("đã huấn luyện lại." if summary else "đã cập nhật."))
    if loaded:
        print(f"Nội dung FAQ: đã nạp {loaded} chủ đề.")
    if password:
        print("Tài khoản quản trị đầu tiên (chỉ hiện MỘT lần, hãy lưu lại):")
        print(f"  tên đăng nhập: admin\n  mật khẩu: {password}")
    return 0


async def _seed_content(settings: Settings) -> int:
    from bot.content.live import seed_shipped_content

    async def seed(store: Any) -> int:
        faq, _services = await seed_shipped_content(settings, store)
        return faq

    return await _open_content_and(settings, seed)


def _serve_single(settings: Settings) -> None:
    from bot.app import create_app

    app = create_app(settings)
    app.run(
        host=settings.host, port=settings.port, single_process=True, access_log=False, motd=False
    )


def _serve_workers(settings: Settings) -> None:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from bot.app import create_app

    loader = AppLoader(factory=partial(create_app, settings))
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        motd=False,
    )
    Sanic.serve(primary=app, app_loader=loader)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.require_secrets()
    if settings.telegram_polling and not settings.telegram_token:
        raise ConfigError("--telegram-polling needs DONGHANH_TELEGRAM_TOKEN")
    if settings.telegram_polling and settings.workers > 1:
        raise ConfigError("--telegram-polling runs in one worker only: use --workers 1")
    base = f"http://{settings.host}:{settings.port}"
    print(
        f"Đồng Hành đang chạy.\n  Trò chuyện trên web: {base}/chat\n"
        f"  Bàn làm việc của tư vấn viên: {base}/console\n"
        f"  API REST: {base}/webhooks/rest/webhook\n"
        "  Tạo tài khoản tư vấn viên: .venv/bin/donghanh users create TÊN --role counsellor",
        flush=True,
    )
    if settings.workers > 1 and not settings.database_url.startswith("postgresql"):
        print(
            "Lưu ý: với SQLite, các sự kiện trực tiếp của bàn tư vấn không đi qua nhiều "
            "worker; hãy dùng PostgreSQL khi chạy nhiều worker.",
            file=sys.stderr,
            flush=True,
        )
    if settings.workers > 1:
        _serve_workers(settings)
    else:
        _serve_single(settings)
    return 0


def cmd_telegram_set_webhook(args: argparse.Namespace) -> int:
    """Register ``URL`` with Telegram under a new secret token, kept in the instance
    secrets, and publish the command menu."""
    from bot.app import register_telegram_webhook

    settings = _settings(args)
    url, path = asyncio.run(register_telegram_webhook(settings, args.url))
    print(
        f"Đã đăng ký webhook Telegram: {url}\n"
        f"Mã bí mật đã lưu trong {path}. Khởi động lại máy chủ để dùng mã mới.",
        flush=True,
    )
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.app import chat_in_terminal

    settings = _settings(args)
    return asyncio.run(chat_in_terminal(settings, sys.stdin, sys.stdout))


# -- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="donghanh", description="Đồng Hành chat service")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser(
        "setup", help="create secrets, migrate, first admin, train if stale"
    ).set_defaults(func=cmd_setup)

    serve = commands.add_parser("serve", help="start the web service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument(
        "--telegram-polling",
        action="store_const",
        const=True,
        help="fetch Telegram messages with getUpdates (no public URL needed)",
    )
    serve.set_defaults(func=cmd_serve)

    telegram = commands.add_parser("telegram", help="the Telegram channel").add_subparsers(
        dest="telegram_command", required=True
    )
    set_webhook = telegram.add_parser(
        "set-webhook", help="register this server's https URL with a new secret token"
    )
    set_webhook.add_argument("url", help="https://your.host (the webhook path is added)")
    set_webhook.set_defaults(func=cmd_telegram_set_webhook)

    commands.add_parser("chat", help="chat with the bot in this terminal").set_defaults(
        func=cmd_chat
    )

    db = commands.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="run migrations").set_defaults(func=cmd_db_upgrade)

    purge = commands.add_parser("purge", help="delete what the retention settings say is due")
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge.set_defaults(func=cmd_purge)

    keys = commands.add_parser("keys", help="encryption keys").add_subparsers(
        dest="keys_command", required=True
    )
    keys.add_parser("new", help="print a new Fernet key (stores nothing)").set_defaults(
        func=cmd_keys_new
    )
    rotate = keys.add_parser("rotate", help="re-encrypt every stored value under the first key")
    rotate.add_argument("--batch-size", type=int, default=500)
    rotate.set_defaults(func=cmd_keys_rotate)

    users = commands.add_parser("users", help="staff accounts").add_subparsers(
        dest="users_command", required=True
    )
    create = users.add_parser(
        "create", help=f"create a staff account (password from a prompt or {PASSWORD_ENV})"
    )
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in StaffRole])
    create.add_argument(
        "--reviewer", action="store_true", help="may publish content others drafted"
    )
    create.set_defaults(func=cmd_users_create)

    content = commands.add_parser("content", help="FAQ answers and the services directory")
    content_commands = content.add_subparsers(dest="content_command", required=True)
    check = content_commands.add_parser("check", help="lint FAQ answers and the directory")
    check.add_argument("--faq-dir", help="folder of FAQ files (default: data/faq)")
    check.set_defaults(func=cmd_content_check)
    load = content_commands.add_parser(
        "load", help="check, then load FAQ answers into the database"
    )
    load.add_argument("--faq-dir", help="folder of FAQ files (default: data/faq)")
    load.set_defaults(func=cmd_content_load)
    export_content = content_commands.add_parser(
        "export", help="write the published content as data/faq, data/nlu and directory files"
    )
    export_content.add_argument("directory")
    export_content.set_defaults(func=cmd_content_export)

    export = commands.add_parser("export", help="export to other tools").add_subparsers(
        dest="export_command", required=True
    )
    rasa = export.add_parser("rasa", help="write a Rasa project (config, domain, nlu, rules)")
    rasa.add_argument("directory")
    rasa.set_defaults(func=cmd_export_rasa)

    nlu = commands.add_parser("nlu", help="language understanding").add_subparsers(
        dest="nlu_command", required=True
    )
    train = nlu.add_parser("train", help="train the intent model")
    train.add_argument("--data")
    train.add_argument("--out")
    train.add_argument("--if-stale", action="store_true", help="only when the data changed")
    train.set_defaults(func=cmd_nlu_train)
    parse = nlu.add_parser("parse", help="parse one message per stdin line into JSON lines")
    parse.add_argument("--model")
    parse.set_defaults(func=cmd_nlu_parse)
    evaluate = nlu.add_parser("evaluate", help="train on one Rasa-format folder, test on another")
    evaluate.add_argument("--train", required=True)
    evaluate.add_argument("--test", required=True)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument(
        "--tokenizer",
        choices=sorted(TOKENIZERS),
        default="regex",
        help="word units for features (regex: fast; underthesea: word_tokenize)",
    )
    evaluate.set_defaults(func=cmd_nlu_evaluate)

    bench = commands.add_parser("bench", help="benchmarks: a table and a JSON file")
    bench.add_argument(
        "suite",
        choices=["nlu", "turns", "memory", "startup", "growth", "all"],
        help="nlu: quality and speed of the model; the others run real servers on "
        "loopback (all: turns, memory, startup and growth)",
    )
    bench.add_argument("--data", help="nlu: the NLU data folder")
    bench.add_argument("--out", help="the JSON file (default: bench-results/SUITE-TIME.json)")
    bench.add_argument("--repeats", type=int, default=3, help="nlu: runs to take medians of")
    bench.add_argument(
        "--database-url",
        help="postgresql+asyncpg://USER@HOST:PORT/NAME: each server gets a fresh database "
        "NAME_<suite>_<random> on that server, migrated, dropped afterwards "
        "(default: a fresh SQLite file)",
    )
    bench.add_argument("--workers", type=int, help="donghanh serve --workers (default 1)")
    bench.add_argument("--users", type=int, help="simulated users (default 50)")
    bench.add_argument("--seconds", type=float, help="each measured load (default 20)")
    bench.add_argument("--warmup", type=float, help="warm-up load before it (default 5)")
    bench.add_argument(
        "--think-ms", type=float, help="mean think time of the paced run (default 1000)"
    )
    bench.add_argument("--growth-users", type=int, help="growth: users (default 10)")
    bench.add_argument("--growth-seconds", type=float, help="growth: seconds a size (default 10)")
    bench.add_argument(
        "--growth-sizes", help="growth: stored conversations (default 1000,10000,100000)"
    )
    bench.add_argument("--startup-runs", type=int, help="startup: starts to time (default 5)")
    bench.add_argument(
        "--model",
        help="a trained NLU model folder to reuse if current (else $DONGHANH_MODEL_DIR, "
        "else one trained once into a cache in the temporary folder)",
    )
    bench.add_argument(
        "--keep", action="store_true", help="keep the instances and databases afterwards"
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(
        os.environ.get(
            "DONGHANH_LOG_LEVEL", "WARNING" if args.command in {"chat", "nlu"} else "INFO"
        )
    )
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except (ConfigError, DataFormatError, BadInput, FileNotFoundError) as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 2
    except DonghanhError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
