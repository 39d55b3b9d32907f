"""The screening questionnaire: its shipped data, the loader's checks, scoring, typed answers
and the one-question-at-a-time flow.

Checks that data/screening/questionnaire.yml loads and keeps its promises (danger_now first,
valid indicators, results that begin with "Kết quả", no hotline but 111 and 113); that
``load_questionnaire`` rejects malformed copies with a ``DataFormatError`` naming the file;
that ``score`` applies the points, the stage rule, the child rule and the danger rule; that
``typed_answer`` reads what people type; and that ``ScreeningFlow`` asks, stops, scores and
keeps answers only when asked to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain import Button, Entity, IntentScore, ParseResult, Reply
from bot.engine.screening import (
    ANSWERS_SLOT,
    CUES_SEEN_SLOT,
    INDICATORS,
    RESULT_SLOT,
    STAGES,
    STATE_SLOT,
    STRENGTHS,
    Answer,
    FlowStep,
    Level,
    Questionnaire,
    ScreeningFlow,
    load_questionnaire,
    score,
    typed_answer,
)
from bot.errors import DataFormatError
from bot.nlu.cues import CUE_NAMES

REPO = Path(__file__).resolve().parents[3]
QUESTIONNAIRE_FILE = REPO / "data" / "screening" / "questionnaire.yml"
CUES = frozenset(CUE_NAMES)

# Law and decree numbers ("53/2024/QH15", "24/7") and years are not phone numbers.
NOT_A_PHONE = re.compile(r"\d+(?:/\d+)+(?:/[\w-]+)?|\b(?:19|20)\d{2}\b")
PHONE_LIKE = re.compile(r"\+?\d(?:[ .\-]?\d){2,}")


def phone_numbers(text: str) -> set[str]:
    """Digit runs of 3 or more (spaces, dots or dashes allowed inside) that are not a
    law reference or a year."""
    return {re.sub(r"\D", "", m) for m in PHONE_LIKE.findall(NOT_A_PHONE.sub(" ", text))}


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


@pytest.fixture(scope="module")
def questionnaire() -> Questionnaire:
    return load_questionnaire(QUESTIONNAIRE_FILE, CUES)


@pytest.fixture
def raw() -> dict[str, Any]:
    data = yaml.safe_load(QUESTIONNAIRE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
def flow(questionnaire: Questionnaire) -> ScreeningFlow:
    return ScreeningFlow(questionnaire)


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# -- the shipped data ---------------------------------------------------------------------


def test_shipped_questionnaire_loads_with_danger_now_first(questionnaire: Questionnaire) -> None:
    assert questionnaire.questions
    first = questionnaire.questions[0]
    assert first.id == "danger_now"
    assert first.indicator == "danger_now"
    assert [q.indicator for q in questionnaire.questions].count("minor") == 1


def test_shipped_questions_use_known_indicators_strengths_stages_and_cues(
    questionnaire: Questionnaire, raw: dict[str, Any]
) -> None:
    used = {q["indicator"] for q in raw["questions"]}
    assert used <= INDICATORS, used - INDICATORS
    for question in questionnaire.questions:
        assert question.strength in STRENGTHS, question.id
        assert question.stage in STAGES, question.id
        assert set(question.cues) <= CUES, question.id
    ids = [q.id for q in questionnaire.questions]
    assert len(ids) == len(set(ids))


def test_every_shipped_result_begins_with_ket_qua(questionnaire: Questionnaire) -> None:
    for level in Level:
        assert questionnaire.results[level.value].startswith("Kết quả"), level


def test_shipped_file_never_mentions_old_hotlines() -> None:
    text = QUESTIONNAIRE_FILE.read_text(encoding="utf-8")
    digits_only = re.sub(r"\D", "", text)
    for old in ("1800", "1567"):
        assert old not in text
        assert old not in digits_only


def test_only_phone_numbers_in_shipped_texts_are_111_and_113(raw: dict[str, Any]) -> None:
    found: set[str] = set()
    for text in strings_in(raw):
        found |= phone_numbers(text)
    assert found == {"111", "113"}


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("gọi 111 (miễn phí, 24/7)", {"111"}),
        ("Luật 53/2024/QH15, Điều 37, năm 2023", set()),
        ("gọi 1800 1567", {"18001567"}),
        ("gọi 0243.123.456", {"0243123456"}),
    ],
)
def test_phone_number_helper_is_not_blind(text: str, numbers: set[str]) -> None:
    assert phone_numbers(text) == numbers


# -- the loader's checks ------------------------------------------------------------------


def _unknown_indicator(raw: dict[str, Any]) -> None:
    raw["questions"][2]["indicator"] = "kidnapping"


def _bad_strength(raw: dict[str, Any]) -> None:
    raw["questions"][2]["strength"] = "weak"


def _bad_stage(raw: dict[str, Any]) -> None:
    raw["questions"][2]["stage"] = "transit"


def _unknown_cue(raw: dict[str, Any]) -> None:
    raw["questions"][2]["cues"] = ["not_a_cue"]


def _duplicate_ids(raw: dict[str, Any]) -> None:
    raw["questions"][3]["id"] = raw["questions"][2]["id"]


def _danger_not_first(raw: dict[str, Any]) -> None:
    questions = raw["questions"]
    questions[0], questions[1] = questions[1], questions[0]


def _no_danger_question(raw: dict[str, Any]) -> None:
    raw["questions"] = [q for q in raw["questions"] if q["indicator"] != "danger_now"]


def _result_without_ket_qua(raw: dict[str, Any]) -> None:
    raw["results"]["some_signs"] = "Các câu trả lời cho thấy một số dấu hiệu đáng lo."


def _missing_result(raw: dict[str, Any]) -> None:
    del raw["results"]["danger_now"]


def _missing_answer_button(raw: dict[str, Any]) -> None:
    del raw["answer_buttons"]["skip"]


def _missing_keep_button(raw: dict[str, Any]) -> None:
    del raw["keep_buttons"]["no"]


def _missing_typed_kind(raw: dict[str, Any]) -> None:
    del raw["typed_answers"]["stop"]


def _some_above_many(raw: dict[str, Any]) -> None:
    raw["scoring"]["some_signs"] = 5
    raw["scoring"]["many_signs"] = 4


def _missing_text(raw: dict[str, Any]) -> None:
    raw["not_an_answer"] = "  "


def _no_questions(raw: dict[str, Any]) -> None:
    raw["questions"] = []


@pytest.mark.parametrize(
    ("mutate", "detail"),
    [
        pytest.param(_unknown_indicator, "unknown indicator 'kidnapping'", id="indicator"),
        pytest.param(_bad_strength, "strength must be", id="strength"),
        pytest.param(_bad_stage, "stage must be", id="stage"),
        pytest.param(_unknown_cue, "unknown cues ['not_a_cue']", id="cue"),
        pytest.param(_duplicate_ids, "unique ids", id="duplicate-ids"),
        pytest.param(_no_questions, "non-empty", id="no-questions"),
        pytest.param(_danger_not_first, "first question", id="danger-not-first"),
        pytest.param(_no_danger_question, "first question", id="no-danger-question"),
        pytest.param(_result_without_ket_qua, "results.some_signs", id="result-text"),
        pytest.param(_missing_result, "results.danger_now", id="result-missing"),
        pytest.param(_missing_answer_button, "answer_buttons", id="answer-buttons"),
        pytest.param(_missing_keep_button, "keep_buttons", id="keep-buttons"),
        pytest.param(_missing_typed_kind, "typed_answers", id="typed-answers"),
        pytest.param(_some_above_many, "some_signs <= many_signs", id="thresholds"),
        pytest.param(_missing_text, "'not_an_answer'", id="empty-text"),
    ],
)
def test_loader_rejects_malformed_copy_naming_the_file(
    tmp_path: Path,
    raw: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    detail: str,
) -> None:
    mutate(raw)
    path = write_yaml(tmp_path / "questionnaire.yml", raw)
    with pytest.raises(DataFormatError) as caught:
        load_questionnaire(path, CUES)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert detail in caught.value.detail


def test_loader_accepts_an_unmodified_round_tripped_copy(
    tmp_path: Path, raw: dict[str, Any], questionnaire: Questionnaire
) -> None:
    """The control for the rejections above: only the mutation makes a copy fail."""
    path = write_yaml(tmp_path / "questionnaire.yml", raw)
    assert load_questionnaire(path, CUES) == questionnaire


def test_loader_rejects_invalid_yaml_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "questionnaire.yml"
    path.write_text("version: 1\nintro: [unclosed\nquestions: {\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_questionnaire(path, CUES)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert "invalid YAML" in caught.value.detail
    assert caught.value.line is not None


def test_loader_rejects_a_cue_missing_from_the_given_cue_names() -> None:
    with pytest.raises(DataFormatError, match="unknown cues") as caught:
        load_questionnaire(QUESTIONNAIRE_FILE, CUES - {"documents_withheld"})
    assert caught.value.path == str(QUESTIONNAIRE_FILE)


# -- scoring ------------------------------------------------------------------------------


def test_shipped_scoring_thresholds(questionnaire: Questionnaire) -> None:
    """The table below assumes these values; if the data changes, revisit the table."""
    rules = questionnaire.scoring
    assert dict(rules.points) == {"strong": 2.0, "medium": 1.0}
    assert rules.unsure_factor == 0.5
    assert rules.some_signs == 2.0
    assert rules.many_signs == 4.0
    assert set(rules.many_signs_requires_stages) == {"exploitation", "coercion"}


def resolve(questionnaire: Questionnaire, spec: list[tuple[str, str]]) -> dict[str, Answer]:
    """Answers from selectors, each picking the next unused question in file order:
    "danger_now", "minor", "strong", "medium:recruitment" (strength[:stage]), or "*" for
    every scored question not picked yet."""
    special = {"danger_now", "minor"}
    answers: dict[str, Answer] = {}
    for selector, answer in spec:
        if selector in special:
            matches = [q.id for q in questionnaire.questions if q.indicator == selector]
            answers[matches[0]] = Answer(answer)
            continue
        scored = [
            q for q in questionnaire.questions if q.indicator not in special and q.id not in answers
        ]
        if selector == "*":
            answers.update({q.id: Answer(answer) for q in scored})
            continue
        strength, _, stage = selector.partition(":")
        pick = next(q for q in scored if q.strength == strength and (not stage or q.stage == stage))
        answers[pick.id] = Answer(answer)
    return answers


SCORE_TABLE = [
    pytest.param(
        [("danger_now", "no"), ("minor", "no"), ("*", "no")], "low", 0, False, id="all-no"
    ),
    pytest.param([], "low", 0, False, id="nothing-answered"),
    pytest.param(
        [("danger_now", "skip"), ("minor", "skip"), ("*", "skip")], "low", 0, False, id="all-skip"
    ),
    pytest.param(
        [("danger_now", "no"), ("minor", "no"), ("*", "yes")],
        "many_signs",
        None,
        False,
        id="all-yes",
    ),
    pytest.param(
        [("danger_now", "no"), ("minor", "yes"), ("*", "yes")],
        "many_signs",
        None,
        True,
        id="all-yes-minor",
    ),
    pytest.param([("medium", "yes")], "low", 1, False, id="one-medium"),
    pytest.param(
        [("medium:recruitment", "yes"), ("medium:recruitment", "yes")],
        "some_signs",
        2,
        False,
        id="two-medium",
    ),
    pytest.param([("strong:coercion", "yes")], "some_signs", 2, False, id="one-strong"),
    pytest.param(
        [("strong:recruitment", "yes"), ("medium:recruitment", "yes"), ("medium", "yes")],
        "many_signs",
        4,
        False,
        id="strong-medium-medium",
    ),
    pytest.param(
        [("strong:coercion", "unsure"), ("strong:coercion", "unsure")],
        "some_signs",
        2,
        False,
        id="two-strong-unsure",
    ),
    pytest.param([("strong:coercion", "unsure")], "low", 1, False, id="one-strong-unsure"),
    pytest.param(
        [("medium:exploitation", "yes"), ("strong:coercion", "yes")],
        "many_signs",
        3,
        False,
        id="stage-rule",
    ),
    pytest.param(
        [("medium:recruitment", "yes"), ("strong:coercion", "yes")],
        "some_signs",
        3,
        False,
        id="same-points-without-both-stages",
    ),
    pytest.param(
        [("medium:exploitation", "unsure"), ("strong:coercion", "yes")],
        "some_signs",
        2.5,
        False,
        id="stage-rule-needs-yes",
    ),
    pytest.param([("minor", "yes")], "low", 0, True, id="minor-alone"),
    pytest.param([("minor", "yes"), ("*", "no")], "low", 0, True, id="minor-rest-no"),
    pytest.param(
        [("minor", "yes"), ("medium:recruitment", "yes")],
        "many_signs",
        1,
        True,
        id="child-rule",
    ),
    pytest.param(
        [("minor", "yes"), ("strong:coercion", "unsure")],
        "low",
        1,
        True,
        id="child-rule-needs-yes",
    ),
    pytest.param(
        [("minor", "unsure"), ("medium:recruitment", "yes")],
        "low",
        1,
        False,
        id="minor-unsure-medium",
    ),
    pytest.param(
        [("minor", "unsure"), ("strong:coercion", "yes")],
        "some_signs",
        2,
        False,
        id="minor-unsure-strong",
    ),
    pytest.param(
        [("minor", "no"), ("medium:recruitment", "yes")], "low", 1, False, id="minor-no-medium"
    ),
    pytest.param([("danger_now", "yes")], "danger_now", 0, False, id="danger-alone"),
    pytest.param(
        [("danger_now", "yes"), ("minor", "yes"), ("*", "yes")],
        "danger_now",
        0,
        False,
        id="danger-whatever-else",
    ),
    pytest.param([("danger_now", "yes"), ("*", "no")], "danger_now", 0, False, id="danger-rest-no"),
    pytest.param(
        [("danger_now", "no"), ("strong:coercion", "yes")],
        "some_signs",
        2,
        False,
        id="danger-no-scored",
    ),
    pytest.param(
        [("danger_now", "unsure"), ("medium", "yes")], "low", 1, False, id="danger-unsure-unscored"
    ),
]


@pytest.mark.parametrize(("spec", "level", "points", "minor"), SCORE_TABLE)
def test_score_table(
    questionnaire: Questionnaire,
    spec: list[tuple[str, str]],
    level: str,
    points: float | None,
    minor: bool,
) -> None:
    answers = resolve(questionnaire, spec)
    assert len(answers) >= len(spec)
    outcome = score(questionnaire, answers)
    assert outcome.level == Level(level)
    assert outcome.minor is minor
    if points is not None:
        assert outcome.points == pytest.approx(points)


def test_score_signs_are_indicators_answered_yes_once_each(questionnaire: Questionnaire) -> None:
    by_indicator: dict[str, list[str]] = {}
    for q in questionnaire.questions:
        by_indicator.setdefault(q.indicator, []).append(q.id)
    shared = next(ind for ind, ids in by_indicator.items() if len(ids) > 1)
    unsure_q = next(q for q in questionnaire.questions[2:] if q.indicator != shared)
    answers = dict.fromkeys(by_indicator[shared], Answer.YES)
    answers[unsure_q.id] = Answer.UNSURE
    outcome = score(questionnaire, answers)
    assert outcome.signs == (shared,)
    assert outcome.unsure == (unsure_q.indicator,)


def test_score_danger_outcome_carries_only_the_danger_sign(questionnaire: Questionnaire) -> None:
    answers = resolve(questionnaire, [("danger_now", "yes"), ("minor", "yes"), ("*", "yes")])
    outcome = score(questionnaire, answers)
    assert outcome.signs == ("danger_now",)
    assert outcome.minor is False


def test_summary_has_level_signs_minor_and_no_raw_answers(questionnaire: Questionnaire) -> None:
    answers = resolve(questionnaire, [("minor", "yes"), ("strong:coercion", "yes")])
    answers.update(resolve(questionnaire, [("medium:recruitment", "unsure")]))
    outcome = score(questionnaire, answers)
    summary = outcome.summary()
    strong_id = next(qid for qid, a in answers.items() if a is Answer.YES and qid != "minor")
    assert summary == {
        "level": "many_signs",
        "signs": [questionnaire.question(strong_id).indicator],
        "minor": True,
    }
    flat = repr(summary)
    for raw_answer in ("yes", "unsure", "Answer."):
        assert raw_answer not in flat


def test_score_ignores_unknown_question_ids(questionnaire: Questionnaire) -> None:
    strong = resolve(questionnaire, [("strong:coercion", "yes")])
    with_unknown = {**strong, "not_a_question": Answer.YES, "another": Answer.UNSURE}
    assert score(questionnaire, with_unknown) == score(questionnaire, strong)
    assert score(questionnaire, {"not_a_question": Answer.YES}).level is Level.LOW


# -- typed answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("có", Answer.YES),
        ("co", Answer.YES),
        ("Có ạ", Answer.YES),
        ("Có!", Answer.YES),
        ("ừ", Answer.YES),
        ("đúng", Answer.YES),
        ("Đúng rồi", Answer.YES),
        ("k", Answer.NO),
        ("ko", Answer.NO),
        ("không", Answer.NO),
        ("KHÔNG", Answer.NO),
        ("khong co", Answer.NO),
        ("không chắc", Answer.UNSURE),
        ("Không chắc lắm", Answer.UNSURE),
        ("ko biet", Answer.UNSURE),
        ("k bt", Answer.UNSURE),
        ("bỏ qua", Answer.SKIP),
        ("bo qua", Answer.SKIP),
        ("skip", Answer.SKIP),
        ("dừng", "stop"),
        ("dung", "stop"),
        ("dừng nhé", "stop"),
        ("thôi", "stop"),
        ("có, họ giữ hộ chiếu", Answer.YES),
        ("không, họ trả lương đủ", Answer.NO),
        ("hello", None),
        ("", None),
        ("   ", None),
    ],
)
def test_typed_answer(
    questionnaire: Questionnaire, text: str, expected: Answer | str | None
) -> None:
    assert typed_answer(questionnaire, text) == expected


@pytest.mark.parametrize("text", ["dừng đi", "dừng lại đi", "dung lai di"])
def test_typed_stop_with_more_words_is_not_yes(questionnaire: Questionnaire, text: str) -> None:
    assert typed_answer(questionnaire, text) != Answer.YES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ko biết", Answer.UNSURE),
        ("ko chắc", Answer.UNSURE),
        ("k chắc", Answer.UNSURE),
        ("ko muốn trả lời", Answer.SKIP),
    ],
)
def test_typed_teencode_with_diacritics(
    questionnaire: Questionnaire, text: str, expected: Answer
) -> None:
    assert typed_answer(questionnaire, text) == expected


# -- the flow -----------------------------------------------------------------------------


def button(**values: str) -> ParseResult:
    """The parse of a tapped button of the flow."""
    inner = ", ".join(f'"{k}": "{v}"' for k, v in values.items())
    return ParseResult(
        text=f"/screening{{{inner}}}",
        intent=IntentScore("screening", 1.0),
        entities=tuple(Entity(k, v, 0, 0) for k, v in values.items()),
    )


def typed(text: str, intent: str = "nlu_fallback") -> ParseResult:
    return ParseResult(text=text, intent=IntentScore(intent, 0.4))


def handled(flow: ScreeningFlow, parse: ParseResult, slots: dict[str, Any]) -> FlowStep:
    step = flow.handle(parse, slots)
    assert step is not None
    return step


def begin(flow: ScreeningFlow, slots: dict[str, Any] | None = None) -> FlowStep:
    """Intro, then "Bắt đầu": the first question."""
    started = flow.start(dict(slots or {}))
    return handled(flow, button(step="start"), started.slots)


def current(step: FlowStep) -> str:
    return str(step.slots[STATE_SLOT]["current"])


def answer_buttons(questionnaire: Questionnaire) -> tuple[Button, ...]:
    return tuple(
        Button(questionnaire.answer_buttons[a.value], f'/screening{{"answer": "{a.value}"}}')
        for a in Answer
    )


def keep_question(questionnaire: Questionnaire) -> Reply:
    titles = questionnaire.keep_buttons
    return Reply(
        questionnaire.keep_question,
        (
            Button(titles["yes"], '/screening{"keep": "yes"}'),
            Button(titles["no"], '/screening{"keep": "no"}'),
        ),
    )


def answer_all(flow: ScreeningFlow, step: FlowStep, answers: dict[str, str]) -> FlowStep:
    """Answers every question asked (``answers`` by id, "no" otherwise) until a result."""
    while step.slots.get(STATE_SLOT, {}).get("stage") == "asking":
        step = handled(flow, button(answer=answers.get(current(step), "no")), step.slots)
    return step


def test_start_gives_intro_with_two_buttons(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = flow.start({"other": 1})
    assert step.replies == [
        Reply(
            questionnaire.intro,
            (
                Button(questionnaire.consent_yes, '/screening{"step": "start"}'),
                Button(questionnaire.consent_no, '/screening{"step": "decline"}'),
            ),
        )
    ]
    assert step.slots["other"] == 1
    assert step.slots[STATE_SLOT]["stage"] == "consent"
    assert ScreeningFlow.is_active(step.slots)
    assert not step.done


def test_decline_clears_the_state(flow: ScreeningFlow, questionnaire: Questionnaire) -> None:
    started = flow.start({"other": 1})
    step = handled(flow, button(step="decline"), started.slots)
    assert step.replies == [Reply(questionnaire.declined)]
    assert step.done
    assert step.slots == {"other": 1}
    assert not ScreeningFlow.is_active(step.slots)


def test_questions_are_asked_one_per_step_in_order_with_four_buttons(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = begin(flow)
    asked: list[str] = []
    while step.slots.get(STATE_SLOT, {}).get("stage") == "asking":
        question = questionnaire.question(current(step))
        assert step.replies == [Reply(question.text, answer_buttons(questionnaire))]
        asked.append(question.id)
        step = handled(flow, button(answer="no"), step.slots)
    assert asked == [q.id for q in questionnaire.questions]


def test_answer_buttons_carry_the_data_titles(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    buttons = begin(flow).replies[0].buttons
    assert [b.title for b in buttons] == [questionnaire.answer_buttons[a.value] for a in Answer]
    assert [b.payload for b in buttons] == [
        '/screening{"answer": "yes"}',
        '/screening{"answer": "no"}',
        '/screening{"answer": "unsure"}',
        '/screening{"answer": "skip"}',
    ]


def test_danger_now_yes_ends_at_once_with_the_danger_result(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = begin(flow, {"other": 1})
    assert current(step) == "danger_now"
    step = handled(flow, button(answer="yes"), step.slots)
    assert len(step.replies) == 1
    assert step.replies[0].text == questionnaire.results["danger_now"]
    assert [b.payload for b in step.replies[0].buttons] == ["/request_counsellor"]
    assert step.done
    assert STATE_SLOT not in step.slots
    assert ANSWERS_SLOT not in step.slots
    assert step.slots[RESULT_SLOT] == {
        "level": "danger_now",
        "signs": ["danger_now"],
        "minor": False,
    }
    assert step.slots["other"] == 1


def test_danger_now_typed_yes_also_ends_at_once(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = handled(flow, typed("có ạ"), begin(flow).slots)
    assert [r.text for r in step.replies] == [questionnaire.results["danger_now"]]
    assert step.done


def test_answering_everything_gives_result_then_keep_question(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = answer_all(flow, begin(flow), {})
    assert len(step.replies) == 2
    assert step.replies[0].text == questionnaire.results["low"]
    assert step.replies[1] == keep_question(questionnaire)
    assert step.slots[STATE_SLOT]["stage"] == "keep"
    assert step.slots[RESULT_SLOT] == {"level": "low", "signs": [], "minor": False}
    assert ANSWERS_SLOT not in step.slots
    assert not step.done


def test_result_reflects_the_answers_and_adds_the_minor_note(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = answer_all(flow, begin(flow), {"minor": "yes"})
    assert step.replies[0].text == (
        f"{questionnaire.results['low']}\n\n{questionnaire.results['minor_note']}"
    )
    assert step.slots[RESULT_SLOT] == {"level": "low", "signs": [], "minor": True}


@pytest.mark.parametrize(
    ("keep", "reply_field"), [("yes", "kept"), ("no", "not_kept")], ids=["keep", "discard"]
)
def test_keep_choice(
    flow: ScreeningFlow, questionnaire: Questionnaire, keep: str, reply_field: str
) -> None:
    strong = next(q for q in questionnaire.questions if q.indicator == "documents_withheld")
    finished = answer_all(flow, begin(flow, {"other": 1}), {strong.id: "yes"})
    answers = finished.slots[STATE_SLOT]["answers"]
    step = handled(flow, button(keep=keep), finished.slots)
    assert step.replies == [Reply(getattr(questionnaire, reply_field))]
    assert step.done
    assert STATE_SLOT not in step.slots
    summary = {"level": "some_signs", "signs": ["documents_withheld"], "minor": False}
    assert step.slots[RESULT_SLOT] == summary
    assert step.slots["other"] == 1
    if keep == "yes":
        expected = {q.id: "yes" if q.id == strong.id else "no" for q in questionnaire.questions}
        assert step.slots[ANSWERS_SLOT] == expected == answers
    else:
        assert step.slots.get(ANSWERS_SLOT) is None


def test_non_answer_at_keep_stage_is_not_for_the_flow(flow: ScreeningFlow) -> None:
    finished = answer_all(flow, begin(flow), {})
    assert (
        flow.handle(typed("công ty này có uy tín không?", "faq/check_recruiter"), finished.slots)
        is None
    )


def test_stop_midway_with_answers_offers_to_keep_them(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = begin(flow)
    step = handled(flow, button(answer="no"), step.slots)
    step = handled(flow, button(answer="unsure"), step.slots)
    stopped = flow.stop(step.slots)
    assert stopped.replies == [Reply(questionnaire.stopped), keep_question(questionnaire)]
    assert stopped.slots[STATE_SLOT] == {
        "stage": "keep",
        "answers": {"danger_now": "no", "minor": "unsure"},
    }
    assert not stopped.done
    kept = handled(flow, button(keep="yes"), stopped.slots)
    assert kept.slots[ANSWERS_SLOT] == {"danger_now": "no", "minor": "unsure"}


@pytest.mark.parametrize("where", ["consent", "first-question"])
def test_stop_without_answers_says_stopped_only_and_clears(
    flow: ScreeningFlow, questionnaire: Questionnaire, where: str
) -> None:
    step = flow.start({"other": 1}) if where == "consent" else begin(flow, {"other": 1})
    stopped = flow.stop(step.slots)
    assert stopped.replies == [Reply(questionnaire.stopped)]
    assert stopped.done
    assert stopped.slots == {"other": 1}


def test_typed_stop_while_asking_stops(flow: ScreeningFlow, questionnaire: Questionnaire) -> None:
    step = handled(flow, button(answer="no"), begin(flow).slots)
    stopped = handled(flow, typed("dừng", "stop"), step.slots)
    assert stopped.replies == [Reply(questionnaire.stopped), keep_question(questionnaire)]
    assert stopped.slots[STATE_SLOT]["answers"] == {"danger_now": "no"}


def test_cancel_drops_the_state_silently(flow: ScreeningFlow) -> None:
    step = handled(flow, button(answer="no"), begin(flow, {"other": 1}).slots)
    assert flow.cancel(step.slots) == {"other": 1}


def test_not_an_answer_repeats_the_same_question(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = handled(flow, button(answer="no"), begin(flow).slots)
    asked = current(step)
    again = handled(flow, typed("hello"), step.slots)
    assert again.replies == [
        Reply(questionnaire.not_an_answer),
        Reply(questionnaire.question(asked).text, answer_buttons(questionnaire)),
    ]
    assert again.slots[STATE_SLOT] == step.slots[STATE_SLOT]
    assert not again.done


def test_typed_answers_count_as_answers_while_asking(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = handled(flow, typed("ko"), begin(flow).slots)
    step = handled(flow, typed("Không chắc ạ"), step.slots)
    step = handled(flow, typed("bo qua"), step.slots)
    first_three = [q.id for q in questionnaire.questions[:3]]
    assert step.slots[STATE_SLOT]["answers"] == dict(
        zip(first_three, ["no", "unsure", "skip"], strict=True)
    )


def test_question_whose_cue_was_seen_is_asked_with_the_confirm_prefix(
    flow: ScreeningFlow, questionnaire: Questionnaire
) -> None:
    step = begin(flow, {CUES_SEEN_SLOT: ["documents_withheld"]})
    prefixed: list[str] = []
    while step.slots.get(STATE_SLOT, {}).get("stage") == "asking":
        question = questionnaire.question(current(step))
        text = step.replies[-1].text
        if "documents_withheld" in question.cues:
            assert text == f"{questionnaire.confirm_prefix}\n{question.text}"
            prefixed.append(question.id)
        else:
            assert text == question.text
        step = handled(flow, button(answer="no"), step.slots)
    assert prefixed == ["documents_withheld"]


def test_takes_as_answer_reads_bo_qua_as_skip_even_with_stop_intent(
    flow: ScreeningFlow,
) -> None:
    step = handled(flow, button(answer="no"), begin(flow).slots)
    parse = typed("bỏ qua", "stop")
    assert flow.takes_as_answer(parse, step.slots)
    after = handled(flow, parse, step.slots)
    assert after.slots[STATE_SLOT]["answers"][current(step)] == "skip"
    assert after.slots[STATE_SLOT]["stage"] == "asking"


@pytest.mark.parametrize(
    ("text", "intent", "active", "expected"),
    [
        ("dừng", "stop", True, False),
        ("thôi", "nlu_fallback", True, False),
        ("hello", "greet", True, False),
        ("có", "affirm", True, True),
        ("ừ", "nlu_fallback", False, False),
    ],
)
def test_takes_as_answer(
    flow: ScreeningFlow, text: str, intent: str, active: bool, expected: bool
) -> None:
    slots = begin(flow).slots if active else {}
    assert flow.takes_as_answer(typed(text, intent), slots) is expected


def test_dung_di_while_asking_stops_rather_than_answering_yes(flow: ScreeningFlow) -> None:
    step = handled(flow, button(answer="no"), begin(flow).slots)
    parse = typed("dừng đi", "stop")
    assert not flow.takes_as_answer(parse, step.slots)
    after = handled(flow, parse, step.slots)
    assert "yes" not in after.slots.get(STATE_SLOT, {}).get("answers", {}).values()


def test_kept_answers_are_not_asked_again_but_danger_always_is() -> None:
    questionnaire = load_questionnaire(QUESTIONNAIRE_FILE, frozenset(CUE_NAMES))
    flow = ScreeningFlow(questionnaire)
    ids = [q.id for q in questionnaire.questions]
    kept = dict.fromkeys(ids, "no")
    step = flow.start({"screening_answers": kept})
    begin = ParseResult(
        text='/screening{"step": "start"}',
        intent=IntentScore("screening", 1.0),
        entities=(Entity("step", "start", 0, 0),),
    )
    asked = flow.handle(begin, step.slots)
    assert asked is not None
    assert asked.replies[0].text == questionnaire.questions[0].text  # danger: asked again
    no = ParseResult(text="không", intent=IntentScore("deny", 0.9))
    finished = flow.handle(no, asked.slots)
    assert finished is not None
    assert finished.replies[0].text.startswith("Kết quả")  # everything else was kept
