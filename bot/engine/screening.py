"""The screening questionnaire: its data, its scoring, and the conversation that asks it.

The questions, their indicators and strengths, the thresholds and every message are
data (``data/screening/questionnaire.yml``) that a content expert can change. This
module reads and checks that file, scores answers with a pure function (``score``),
and runs the flow one message at a time over a state kept in the conversation's slots:
an intro and consent, one question at a time (Có / Không / Không chắc / Bỏ qua, typed
or tapped), "dừng" at any point, a result, and a choice to keep the answers or not.

Scoring follows the ILO/EC approach: strong indicators weigh more than medium ones, a
"Không chắc" counts part; many signs when the points reach a threshold or when there
are signs in every stage listed (exploitation and coercion). Two questions are not
scored: ``danger_now`` (a "Có" ends the questionnaire at once with the danger result)
and ``minor`` (for a person under 18 any other sign counts as many signs, since no
force or deception is needed: Art. 2(1) Law 53/2024).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bot.datafiles import read_yaml
from bot.domain import Button, ParseResult, Reply
from bot.errors import DataFormatError
from bot.nlu.cues import CUE_NAMES
from bot.nlu.normalize import strip_diacritics

DANGER_INDICATOR = "danger_now"
MINOR_INDICATOR = "minor"
STAGES = ("recruitment", "exploitation", "coercion")
STRENGTHS = ("strong", "medium")
# every risk cue the NLU detects, plus what only a question can ask
INDICATORS = frozenset(CUE_NAMES) | {"abusive_conditions", DANGER_INDICATOR}
SCREENING_INTENT = "screening"  # the intent of the flow's own buttons
STATE_SLOT = "screening"
RESULT_SLOT = "screening_result"
ANSWERS_SLOT = "screening_answers"
CUES_SEEN_SLOT = "cues_seen"


class Answer(enum.StrEnum):
    YES = "yes"
    NO = "no"
    UNSURE = "unsure"
    SKIP = "skip"


class Level(enum.StrEnum):
    LOW = "low"
    SOME = "some_signs"
    MANY = "many_signs"
    DANGER = "danger_now"


@dataclass(frozen=True)
class Question:
    id: str
    indicator: str
    strength: str
    stage: str
    text: str
    cues: tuple[str, ...]


@dataclass(frozen=True)
class Scoring:
    points: Mapping[str, float]
    unsure_factor: float
    some_signs: float
    many_signs: float
    many_signs_requires_stages: tuple[str, ...]


@dataclass(frozen=True)
class Questionnaire:
    intro: str
    consent_yes: str
    consent_no: str
    declined: str
    stopped: str
    keep_question: str
    kept: str
    not_kept: str
    not_an_answer: str
    answer_buttons: Mapping[str, str]
    keep_buttons: Mapping[str, str]
    confirm_prefix: str
    questions: tuple[Question, ...]
    scoring: Scoring
    results: Mapping[str, str]
    typed_answers: Mapping[str, tuple[str, ...]]
    reviewed: date
    sources: tuple[str, ...]

    def question(self, question_id: str) -> Question:
        return next(q for q in self.questions if q.id == question_id)


@dataclass(frozen=True)
class Outcome:
    level: Level
    signs: tuple[str, ...]  # indicators answered "Có"
    unsure: tuple[str, ...]  # indicators answered "Không chắc"
    minor: bool
    points: float

    def summary(self) -> dict[str, Any]:
        """What is kept on the conversation for a counsellor: no raw answers."""
        return {"level": self.level.value, "signs": list(self.signs), "minor": self.minor}


# -- reading the questionnaire ----------------------------------------------------------

TEXT_FIELDS = (
    "intro",
    "consent_yes",
    "consent_no",
    "declined",
    "stopped",
    "keep_question",
    "kept",
    "not_kept",
    "not_an_answer",
    "confirm_prefix",
)


def _require_text(path: Path, raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(path, f"'{key}' must be a non-empty text")
    return value.strip()


def _question(path: Path, raw: Any, cue_names: frozenset[str]) -> Question:
    if not isinstance(raw, dict):
        raise DataFormatError(path, "each question must be a mapping")
    qid = _require_text(path, raw, "id")
    where = f"question {qid!r}"
    if raw.get("indicator") not in INDICATORS:
        raise DataFormatError(path, f"{where}: unknown indicator {raw.get('indicator')!r}")
    if raw.get("strength") not in STRENGTHS:
        raise DataFormatError(path, f"{where}: strength must be one of {STRENGTHS}")
    if raw.get("stage") not in STAGES:
        raise DataFormatError(path, f"{where}: stage must be one of {STAGES}")
    cues = tuple(raw.get("cues") or ())
    unknown = set(cues) - cue_names
    if unknown:
        raise DataFormatError(path, f"{where}: unknown cues {sorted(unknown)}")
    return Question(
        qid, raw["indicator"], raw["strength"], raw["stage"], _require_text(path, raw, "text"), cues
    )


def _scoring(path: Path, raw: Any) -> Scoring:
    try:
        scoring = Scoring(
            points={k: float(v) for k, v in raw["points"].items()},
            unsure_factor=float(raw["unsure_factor"]),
            some_signs=float(raw["some_signs"]),
            many_signs=float(raw["many_signs"]),
            many_signs_requires_stages=tuple(raw.get("many_signs_requires_stages") or ()),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataFormatError(path, f"'scoring' is incomplete: {exc}") from exc
    if set(scoring.points) != set(STRENGTHS):
        raise DataFormatError(path, f"scoring.points must give {STRENGTHS}")
    if not 0 < scoring.some_signs <= scoring.many_signs:
        raise DataFormatError(path, "scoring: 0 < some_signs <= many_signs")
    if set(scoring.many_signs_requires_stages) - set(STAGES):
        raise DataFormatError(path, f"scoring: stages must be among {STAGES}")
    return scoring


def load_questionnaire(path: Path, cue_names: frozenset[str]) -> Questionnaire:
    """The questionnaire, checked; a ``DataFormatError`` names the file and problem."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise DataFormatError(path, "expected a mapping")
    questions = tuple(_question(path, q, cue_names) for q in raw.get("questions") or [])
    ids = [q.id for q in questions]
    if not questions or len(ids) != len(set(ids)):
        raise DataFormatError(path, "questions must be a non-empty list with unique ids")
    if questions[0].indicator != DANGER_INDICATOR:
        raise DataFormatError(path, "the first question must be the danger_now question")
    results = raw.get("results") or {}
    for level in Level:
        text = results.get(level.value)
        if not isinstance(text, str) or not text.strip().startswith("Kết quả"):
            raise DataFormatError(path, f"results.{level.value} must begin with 'Kết quả'")
    buttons = raw.get("answer_buttons") or {}
    if set(buttons) != {a.value for a in Answer}:
        raise DataFormatError(path, "answer_buttons must name yes, no, unsure and skip")
    keep_buttons = raw.get("keep_buttons") or {}
    if set(keep_buttons) != {"yes", "no"}:
        raise DataFormatError(path, "keep_buttons must name yes and no")
    typed = raw.get("typed_answers") or {}
    if set(typed) != {*(a.value for a in Answer), "stop"}:
        raise DataFormatError(path, "typed_answers must list yes, no, unsure, skip and stop")
    return Questionnaire(
        **{key: _require_text(path, raw, key) for key in TEXT_FIELDS},
        answer_buttons={k: str(v) for k, v in buttons.items()},
        keep_buttons={k: str(v) for k, v in keep_buttons.items()},
        questions=questions,
        scoring=_scoring(path, raw.get("scoring")),
        results={k: str(v).strip() for k, v in results.items()},
        typed_answers={k: tuple(str(w) for w in v) for k, v in typed.items()},
        reviewed=raw["reviewed"],
        sources=tuple(str(s) for s in raw.get("sources") or ()),
    )


# -- scoring ----------------------------------------------------------------------------


def score(questionnaire: Questionnaire, answers: Mapping[str, Answer]) -> Outcome:
    """The result of a set of answers (question id -> answer); unanswered questions
    count as skipped."""
    by_id = {q.id: q for q in questionnaire.questions}
    answered = [(by_id[qid], answer) for qid, answer in answers.items() if qid in by_id]
    if any(q.indicator == DANGER_INDICATOR and a is Answer.YES for q, a in answered):
        return Outcome(Level.DANGER, (DANGER_INDICATOR,), (), False, 0.0)
    minor = any(q.indicator == MINOR_INDICATOR and a is Answer.YES for q, a in answered)
    scored = [(q, a) for q, a in answered if q.indicator not in (DANGER_INDICATOR, MINOR_INDICATOR)]
    yes = [q for q, a in scored if a is Answer.YES]
    unsure = [q for q, a in scored if a is Answer.UNSURE]
    rules = questionnaire.scoring
    points = sum(rules.points[q.strength] for q in yes) + rules.unsure_factor * sum(
        rules.points[q.strength] for q in unsure
    )
    stages = {q.stage for q in yes}
    every_stage = (
        bool(rules.many_signs_requires_stages) and set(rules.many_signs_requires_stages) <= stages
    )
    if points >= rules.many_signs or every_stage or (minor and yes):
        level = Level.MANY
    elif points >= rules.some_signs:
        level = Level.SOME
    else:
        level = Level.LOW
    signs = tuple(dict.fromkeys(q.indicator for q in yes))
    return Outcome(level, signs, tuple(dict.fromkeys(q.indicator for q in unsure)), minor, points)


# -- understanding answers --------------------------------------------------------------

_PARTICLES = re.compile(r"\s+(a|ah|ạ|nhe|nhé|nha|ak|ha)$")
# When one folded form means two things ("dung": đúng or dừng), the safer one wins.
KIND_PRIORITY = ("stop", Answer.UNSURE.value, Answer.SKIP.value, Answer.NO.value, Answer.YES.value)


def words_of(text: str) -> str:
    """Lower case, words only, diacritics kept: "Không chắc ạ!" -> "không chắc ạ"."""
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFC", text).lower()))


def fold(text: str) -> str:
    """``words_of`` without diacritics: "Không chắc ạ!" -> "khong chac a"."""
    return words_of(strip_diacritics(text))


def typed_answer(questionnaire: Questionnaire, text: str) -> Answer | str | None:
    """An ``Answer``, "stop", or None for a message that is not an answer.

    The whole message is compared first, as written (so "đúng" is yes and "dừng" is
    stop) and then without diacritics (where "dung" is taken as stop, the safer
    reading); only then its opening words, the same two ways, so "có, họ giữ hộ chiếu"
    is a yes, "ko biết" is unsure, "dừng lại đi" stops. Longer phrases win ("không
    chắc" is not read as "không")."""
    for whole in (True, False):
        for convert in (words_of, fold):
            found = _match(questionnaire, convert, convert(text), whole=whole)
            if found is not None:
                return found if found == "stop" else Answer(found)
    return None


def _match(questionnaire: Questionnaire, convert: Any, said: str, *, whole: bool) -> str | None:
    bare = _PARTICLES.sub("", said).strip()
    phrases = sorted(
        (
            (convert(phrase), kind)
            for kind in KIND_PRIORITY
            for phrase in questionnaire.typed_answers.get(kind, ())
        ),
        key=lambda item: -len(item[0]),
    )
    for phrase, kind in phrases:
        if whole and phrase in (said, bare):
            return kind
        if not whole and bare.startswith(phrase + " "):
            return kind
    return None


# -- the flow ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowStep:
    """What the flow says this turn, and the slots after it."""

    replies: list[Reply]
    slots: dict[str, Any]
    done: bool = False


def _button(title: str, **values: str) -> Button:
    entities = ", ".join(f'"{k}": "{v}"' for k, v in values.items())
    return Button(title=title, payload=f"/{SCREENING_INTENT}{{{entities}}}")


class ScreeningFlow:
    def __init__(self, questionnaire: Questionnaire) -> None:
        self.q = questionnaire
        # a kept answer stands, except about danger now: that is asked every time
        self._asked_again_never = {
            q.id for q in questionnaire.questions if q.indicator != DANGER_INDICATOR
        }

    @staticmethod
    def is_active(slots: Mapping[str, Any]) -> bool:
        return bool(slots.get(STATE_SLOT))

    def start(self, slots: dict[str, Any]) -> FlowStep:
        """The intro and consent. Answers the person chose to keep from an earlier
        round count as given: those questions are not asked again."""
        buttons = (
            _button(self.q.consent_yes, step="start"),
            _button(self.q.consent_no, step="decline"),
        )
        kept = {
            qid: answer
            for qid, answer in (slots.get(ANSWERS_SLOT) or {}).items()
            if qid in self._asked_again_never
        }
        state = {"stage": "consent", "answers": kept}
        return FlowStep([Reply(self.q.intro, buttons)], {**slots, STATE_SLOT: state})

    def stop(self, slots: dict[str, Any]) -> FlowStep:
        """ "dừng": ends at once; the answers so far are kept only if the person says so."""
        state = slots.get(STATE_SLOT) or {}
        answers = state.get("answers") or {}
        if not answers:
            return FlowStep([Reply(self.q.stopped)], self._cleared(slots), done=True)
        keep = {"stage": "keep", "answers": answers}
        return FlowStep([Reply(self.q.stopped), self._keep_question()], {**slots, STATE_SLOT: keep})

    def cancel(self, slots: dict[str, Any]) -> dict[str, Any]:
        """Leave the flow without a word (danger comes first; answers are not kept)."""
        return self._cleared(slots)

    def handle(self, parse: ParseResult, slots: dict[str, Any]) -> FlowStep | None:
        """The flow's reply to a message, or None if the message is not for the flow
        (the flow then ends and the message is handled as usual)."""
        state = dict(slots.get(STATE_SLOT) or {})
        values = _button_values(parse)
        answer = self._answer(parse, values)
        if answer == "stop":
            return self.stop(slots)
        stage = state.get("stage")
        if stage == "consent":
            return self._consent(parse, values, answer, slots, state)
        if stage == "asking":
            return self._asking(answer, slots, state)
        if stage == "keep":
            return self._keep(values, answer, slots, state)
        return None

    # -- stages --

    def _consent(
        self,
        parse: ParseResult,
        values: dict[str, str],
        answer: Answer | str | None,
        slots: dict[str, Any],
        state: dict[str, Any],
    ) -> FlowStep | None:
        if values.get("step") == "start" or answer is Answer.YES:
            state = {"stage": "asking", "answers": dict(state.get("answers") or {})}
            return self._next_question(slots, state)
        if values.get("step") == "decline" or answer in (Answer.NO, Answer.SKIP):
            return FlowStep([Reply(self.q.declined)], self._cleared(slots), done=True)
        return None

    def _asking(
        self, answer: Answer | str | None, slots: dict[str, Any], state: dict[str, Any]
    ) -> FlowStep:
        current = state.get("current")
        if not isinstance(answer, Answer) or current is None:
            question = self.q.question(str(current)) if current else self.q.questions[0]
            return FlowStep([Reply(self.q.not_an_answer), self._ask(question, slots)], {**slots})
        answers = {**state.get("answers", {}), str(current): answer.value}
        state = {**state, "answers": answers}
        question = self.q.question(str(current))
        if question.indicator == DANGER_INDICATOR and answer is Answer.YES:
            return self._finish(slots, state)
        return self._next_question(slots, state)

    def _keep(
        self,
        values: dict[str, str],
        answer: Answer | str | None,
        slots: dict[str, Any],
        state: dict[str, Any],
    ) -> FlowStep | None:
        cleared = self._cleared(slots)
        if values.get("keep") == "yes" or answer is Answer.YES:
            return FlowStep(
                [Reply(self.q.kept)], {**cleared, ANSWERS_SLOT: state.get("answers")}, done=True
            )
        if values.get("keep") == "no" or answer in (Answer.NO, Answer.SKIP):
            return FlowStep([Reply(self.q.not_kept)], cleared, done=True)
        return None  # something else: the answers are not kept, the message goes on

    # -- pieces --

    def _next_question(self, slots: dict[str, Any], state: dict[str, Any]) -> FlowStep:
        answered = state.get("answers", {})
        for question in self.q.questions:
            if question.id not in answered:
                state = {**state, "current": question.id}
                return FlowStep([self._ask(question, slots)], {**slots, STATE_SLOT: state})
        return self._finish(slots, state)

    def _ask(self, question: Question, slots: Mapping[str, Any]) -> Reply:
        seen = set(slots.get(CUES_SEEN_SLOT) or ())
        text = question.text
        if seen & set(question.cues):
            text = f"{self.q.confirm_prefix}\n{text}"
        buttons = tuple(_button(self.q.answer_buttons[a.value], answer=a.value) for a in Answer)
        return Reply(text, buttons)

    def _finish(self, slots: dict[str, Any], state: dict[str, Any]) -> FlowStep:
        answers = {k: Answer(v) for k, v in state.get("answers", {}).items()}
        outcome = score(self.q, answers)
        text = self.q.results[outcome.level.value]
        if outcome.minor and outcome.level is not Level.DANGER:
            text = f"{text}\n\n{self.q.results['minor_note']}"
        result = Reply(text, _result_buttons(outcome.level))
        kept = {**slots, RESULT_SLOT: outcome.summary()}
        if outcome.level is Level.DANGER:
            return FlowStep([result], self._cleared(kept), done=True)
        keep = {"stage": "keep", "answers": state.get("answers", {})}
        return FlowStep([result, self._keep_question()], {**kept, STATE_SLOT: keep})

    def _keep_question(self) -> Reply:
        titles = self.q.keep_buttons
        return Reply(
            self.q.keep_question,
            (_button(titles["yes"], keep="yes"), _button(titles["no"], keep="no")),
        )

    def takes_as_answer(self, parse: ParseResult, slots: Mapping[str, Any]) -> bool:
        """Whether the running flow reads this message as an answer ("bỏ qua" is a
        skip here, not a "stop")."""
        return self.is_active(slots) and isinstance(
            self._answer(parse, _button_values(parse)), Answer
        )

    def _answer(self, parse: ParseResult, values: dict[str, str]) -> Answer | str | None:
        """Buttons first, then what was typed, then the intent (stop, affirm, deny)."""
        if values.get("answer") in {a.value for a in Answer}:
            return Answer(values["answer"])
        typed = typed_answer(self.q, parse.text)
        if typed is not None:
            return typed
        if parse.intent_name == "stop":
            return "stop"
        return {"affirm": Answer.YES, "deny": Answer.NO}.get(parse.intent_name or "")

    @staticmethod
    def _cleared(slots: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in slots.items() if k != STATE_SLOT}


def _button_values(parse: ParseResult) -> dict[str, str]:
    if parse.intent_name != SCREENING_INTENT:
        return {}
    return {e.entity: e.value for e in parse.entities}


def _result_buttons(level: Level) -> tuple[Button, ...]:
    counsellor = Button("Gặp tư vấn viên", "/request_counsellor")
    services = Button("Tìm nơi hỗ trợ", "/find_service")
    if level is Level.LOW:
        return (services, Button("Kiểm tra công ty", "/faq/check_recruiter_license"))
    if level is Level.DANGER:
        return (counsellor,)
    return (counsellor, services)
