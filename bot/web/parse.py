"""``POST /model/parse``: the NLU result for a text, in the shape of Rasa's endpoint."""

from __future__ import annotations

from collections.abc import Callable

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot.bodies import decode_json_object, require_string
from bot.nlu.interpreter import Interpreter

MAX_TEXT_CHARS = 20_000


def create_blueprint(interpreter: Callable[[Request], Interpreter], max_bytes: int) -> Blueprint:
    bp = Blueprint("model_parse")

    @bp.post("/model/parse")
    async def parse(request: Request) -> HTTPResponse:
        data = decode_json_object(request.body, max_bytes=max_bytes)
        text = require_string(data, "text", max_chars=MAX_TEXT_CHARS, allow_empty=True)
        return json(interpreter(request).parse(text).as_rasa_dict(), ensure_ascii=False)

    return bp
