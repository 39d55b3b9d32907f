"""What the bot answers, through the REST channel of a real server: the 20 FAQ topics
with their source and review date, the services for every province name people use, the
report and fallback flows; and the same answers from a standard Rasa action server.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from conftest import REPO, LiveServer, free_port, make_settings, sqlite_only

from bot.content.faq import read_faq_dir, to_entry
from bot.nlu.normalize import strip_diacritics
from bot.nlu.rasa_yaml import read_nlu_dir

pytestmark = pytest.mark.slow

WEBHOOK = "/webhooks/rest/webhook"
FAQ = {entry.key: entry for entry in map(to_entry, read_faq_dir(REPO / "data" / "faq"))}
UNITS = yaml.safe_load((REPO / "services_directory" / "provinces.yml").read_text("utf-8"))["units"]
FORMER = [(former, unit["name"]) for unit in UNITS for former in unit["former"]]


def first_test_question_per_topic() -> dict[str, str]:
    """The first held-out question of each topic (the model never trained on it)."""
    questions: dict[str, list[str]] = defaultdict(list)
    for example in read_nlu_dir(REPO / "data" / "nlu" / "test", exclude=()).examples:
        if example.full_intent.startswith("faq/"):
            questions[example.full_intent.removeprefix("faq/")].append(example.text)
    return {key: texts[0] for key, texts in questions.items()}


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The answers cannot depend on the database: SQLite only here (the same storage
    runs on PostgreSQL too in the channel, turn and console API tests)."""
    with sqlite_only(tmp_path_factory) as url:
        yield url


QUESTIONS = first_test_question_per_topic()


@pytest.fixture(scope="module")
def client(module_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=module_server.base_url, timeout=30) as http:
        yield http


def say(client: httpx.Client, sender: str, message: str) -> list[dict[str, Any]]:
    response = client.post(WEBHOOK, json={"sender": sender, "message": message})
    assert response.status_code == 200, response.text
    replies: list[dict[str, Any]] = response.json()
    return replies


def answer_to(client: httpx.Client, sender: str, message: str) -> dict[str, Any]:
    """The answer itself: the last reply (a message that tells of a risk, such as a
    relative held for ransom, gets a short acknowledgement first)."""
    replies = say(client, sender, message)
    assert 1 <= len(replies) <= 2, replies
    if len(replies) == 2:
        assert replies[0]["text"].startswith("Cảm ơn bạn đã kể cho mình.")
    return replies[-1]


def new_sender() -> str:
    return f"answers-{uuid.uuid4().hex}"


def test_every_topic_has_a_held_out_question() -> None:
    assert set(QUESTIONS) == set(FAQ)
    assert len(FAQ) == 20


@pytest.mark.parametrize("diacritics", [True, False], ids=["with-diacritics", "without"])
@pytest.mark.parametrize("key", sorted(FAQ))
def test_each_topic_answers_with_its_source_and_review_date(
    client: httpx.Client, key: str, diacritics: bool
) -> None:
    entry = FAQ[key]
    question = entry.title if diacritics else strip_diacritics(entry.title).lower()
    reply = answer_to(client, new_sender(), question)
    assert reply["text"].startswith(entry.answer)
    assert f"Nguồn: {entry.sources[0]}" in reply["text"]
    assert f"Rà soát ngày {entry.reviewed:%d/%m/%Y}" in reply["text"]
    assert "111" in reply["text"]  # every answer leaves a way to reach a person
    payloads = [b["payload"] for b in reply.get("buttons", [])]
    if entry.more:
        assert payloads[0] == f'/faq/{key}{{"detail": "more"}}'


@pytest.mark.parametrize("diacritics", [True, False], ids=["with-diacritics", "without"])
@pytest.mark.parametrize("key", sorted(FAQ))
def test_a_held_out_question_gets_the_answer_or_the_topic_among_two_choices(
    client: httpx.Client, key: str, diacritics: bool
) -> None:
    question = QUESTIONS[key] if diacritics else strip_diacritics(QUESTIONS[key])
    reply = answer_to(client, new_sender(), question)
    payloads = [b["payload"] for b in reply.get("buttons", [])]
    answered = reply["text"].startswith(FAQ[key].answer)
    offered = not answered and f"/faq/{key}" in payloads and len(payloads) <= 2
    assert answered or offered, reply


def test_more_sends_the_follow_up(client: httpx.Client) -> None:
    sender = new_sender()
    answer = answer_to(client, sender, QUESTIONS["deposit"])
    more = next(b for b in answer["buttons"] if b["title"] == "Xem thêm")
    (follow_up,) = say(client, sender, more["payload"])
    assert follow_up["text"] == FAQ["deposit"].more


def test_an_unsure_question_offers_the_closest_topics_instead_of_guessing(
    client: httpx.Client,
) -> None:
    # one word shared by two topics: the model cannot be sure which is meant
    reply = answer_to(client, new_sender(), "tiền")
    if reply["text"].startswith(tuple(entry.answer for entry in FAQ.values())):
        pytest.fail(f"guessed an answer for an unclear question: {reply['text'][:80]}")
    payloads = [b["payload"] for b in reply.get("buttons", [])]
    assert payloads, reply
    assert all(p.startswith("/") for p in payloads)


@pytest.mark.parametrize("unit", [u["name"] for u in UNITS])
def test_services_for_every_unit_in_force(client: httpx.Client, unit: str) -> None:
    replies = say(client, new_sender(), f"tôi ở {unit}, cần tìm nơi hỗ trợ gần nhà")
    text = "\n".join(r["text"] for r in replies)
    assert text.index("111") < text.index("113"), "111 comes first"
    assert "Sở Y tế" in text and unit in text
    assert "UBND xã" in text
    assert "1800 1567" not in text


CITIES = {u["name"] for u in UNITS if u["kind"] == "city"}


@pytest.mark.parametrize("diacritics", [True, False], ids=["with-diacritics", "without"])
@pytest.mark.parametrize(("former", "unit"), FORMER, ids=[f for f, _ in FORMER])
def test_former_province_names_get_the_unit_in_force(
    client: httpx.Client, former: str, unit: str, diacritics: bool
) -> None:
    sender = new_sender()
    asked = say(client, sender, "/find_service")
    assert "tỉnh" in asked[0]["text"]
    replies = say(client, sender, former if diacritics else strip_diacritics(former).lower())
    text = "\n".join(r["text"] for r in replies)
    assert f"Sở Y tế {'Thành phố' if unit in CITIES else 'tỉnh'} {unit}" in text
    if former != unit:
        assert f"Từ 1/7/2025, {former} đã sáp nhập vào" in text, "explains the 2025 merger"


def test_a_district_maps_to_its_province(client: httpx.Client) -> None:
    replies = say(client, new_sender(), "em ở Vĩnh Cửu, tìm chỗ giúp đỡ")
    text = "\n".join(r["text"] for r in replies)
    assert "Vĩnh Cửu nay thuộc tỉnh Đồng Nai" in text
    assert "Sở Y tế tỉnh Đồng Nai" in text


def test_no_province_after_asking_gives_national_services(client: httpx.Client) -> None:
    sender = new_sender()
    say(client, sender, "/find_service")
    replies = say(client, sender, "không")
    text = replies[0]["text"]
    assert "toàn quốc" in text and "111" in text and "113" in text


def test_changing_the_subject_leaves_the_province_question(client: httpx.Client) -> None:
    sender = new_sender()
    say(client, sender, "/find_service")
    reply = answer_to(client, sender, QUESTIONS["hotline_111"])
    assert reply["text"].startswith(FAQ["hotline_111"].answer)


def test_reporting_someone_else(client: httpx.Client) -> None:
    replies = say(
        client, new_sender(), "em gái tôi ở Nghệ An đi Trung Quốc rồi mất liên lạc, tôi muốn báo"
    )
    text = "\n".join(r["text"] for r in replies)
    assert "113" in text and "111" in text and "UBND xã" in text
    assert "Công an tỉnh Nghệ An" in text
    assert any(b["payload"] == "/request_counsellor" for r in replies for b in r.get("buttons", []))


def test_two_misses_in_a_row_offer_a_person(client: httpx.Client) -> None:
    sender = new_sender()
    first = say(client, sender, "qwzx plorf vbnm")
    second = say(client, sender, "zzkq vrrp")
    assert "nói lại" in first[0]["text"]
    assert "111" in second[0]["text"]
    assert any(b["payload"] == "/request_counsellor" for b in second[0].get("buttons", []))


# -- the same answers from a standard Rasa action server --------------------------------


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the Rasa action server did not start")
    yield f"{url}/webhook"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def remote_client(
    tmp_path_factory: pytest.TempPathFactory,
    model_dir: Any,
    module_database_url: str,
    action_server: str,
) -> Iterator[httpx.Client]:
    settings = make_settings(tmp_path_factory.mktemp("remote"), module_database_url, model_dir)
    server = LiveServer(settings, {"DONGHANH_ACTION_ENDPOINT": action_server}).start()
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http
    server.stop()


CONVERSATIONS = [
    [QUESTIONS["deposit"], '/faq/deposit{"detail": "more"}'],
    ["/find_service", "Bà Rịa - Vũng Tàu"],
    ["tôi ở Hà Giang, cần tìm nơi hỗ trợ"],
    ["em gái tôi ở Nghệ An mất liên lạc, tôi muốn báo"],
    ["qwzx plorf vbnm", "zzkq vrrp"],
    ["tiền"],
]


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=lambda c: c[0][:20])
def test_a_rasa_action_server_gives_identical_answers(
    client: httpx.Client, remote_client: httpx.Client, conversation: list[str]
) -> None:
    local_sender, remote_sender = new_sender(), new_sender()
    for message in conversation:
        local = say(client, local_sender, message)
        remote = say(remote_client, remote_sender, message)
        strip = [{k: v for k, v in r.items() if k != "recipient_id"} for r in local]
        assert [{k: v for k, v in r.items() if k != "recipient_id"} for r in remote] == strip
        assert local, message
