"""``GET /api/v1/openapi.json``: the API's OpenAPI 3.1 document.

Written out by hand (Sanic's generated document is off: it would pull a UI from a CDN),
and kept honest by a test that compares it with the routes the app really serves.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot import __version__

ERROR = {"$ref": "#/components/schemas/Error"}
CSRF = {"$ref": "#/components/parameters/CsrfToken"}


def _errors(*statuses: int) -> dict[str, Any]:
    meanings = {
        400: "Bad input",
        401: "Not logged in, or wrong credentials",
        403: "Not allowed, or a missing CSRF token",
        404: "No such conversation (or not one that entered a handoff), topic or item",
        409: "Not in a state that allows it: taken by someone else, ended, the "
        "channel's reply window is closed, or the same person edited and publishes",
        413: "The body is over this route's size limit (it is refused unread)",
        422: "The content fails the linter: 'problems' lists why",
        429: "Too many attempts",
        503: "Retry later",
    }
    return {
        str(status): {
            "description": meanings[status],
            "content": {"application/json": {"schema": ERROR}},
        }
        for status in statuses
    }


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Đồng Hành API",
        "version": __version__,
        "description": (
            "Staff API used by the counsellor console. Log in to get a session cookie and "
            "a CSRF token; send the token as X-CSRF-Token on every write."
        ),
    },
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "dh_session"},
        },
        "parameters": {
            "CsrfToken": {
                "name": "X-CSRF-Token",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "status"],
                "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
            },
            "Member": {
                "type": "object",
                "required": ["id", "username", "role"],
                "properties": {
                    "id": {"type": "integer"},
                    "username": {"type": "string"},
                    "role": {
                        "type": "string",
                        "enum": ["admin", "editor", "supervisor", "counsellor"],
                    },
                },
            },
        },
    },
    "paths": {
        "/api/v1/auth/login": {
            "post": {
                "summary": "Log in",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["username", "password"],
                                "properties": {
                                    "username": {"type": "string", "maxLength": 64},
                                    "password": {"type": "string", "maxLength": 256},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Logged in; the session cookie is set",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["csrf_token", "user"],
                                    "properties": {
                                        "csrf_token": {"type": "string"},
                                        "user": {"$ref": "#/components/schemas/Member"},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(400, 401, 429),
                },
            }
        },
        "/api/v1/auth/logout": {
            "post": {
                "summary": "Log out",
                "security": [{"session": []}],
                "parameters": [CSRF],
                "responses": {"200": {"description": "Logged out"}, **_errors(401, 403)},
            }
        },
        "/api/v1/me": {
            "get": {
                "summary": "Who is logged in",
                "security": [{"session": []}],
                "responses": {
                    "200": {
                        "description": "The member of the session",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Member"}}
                        },
                    },
                    **_errors(401),
                },
            }
        },
    },
}


CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SESSION: list[dict[str, list[str]]] = [{"session": []}]


def _json_body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any] | None = None, status: int = 200) -> Any:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return {str(status): response}


def _read(summary: str, description: str, *errors: int, **extra: Any) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": SESSION,
            "responses": {**_ok(description, {"type": "object"}), **_errors(401, 403, *errors)},
            **extra,
        }
    }


def _write(
    summary: str,
    body: dict[str, Any] | None,
    *errors: int,
    status: int = 200,
    path_params: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": SESSION,
        "parameters": [CSRF, *path_params],
        "responses": {**_ok("Done", {"type": "object"}, status), **_errors(400, 401, 403, *errors)},
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


TEXT = {"text": {"type": "string", "minLength": 1, "maxLength": 2000}}
CONSOLE_PATHS: dict[str, Any] = {
    "/api/v1/auth/csrf": _read(
        "The CSRF token of this session again (after a page reload)", "The token"
    ),
    "/api/v1/me/availability": {
        "post": _write(
            "Say whether I take conversations now",
            _json_body(["available"], {"available": {"type": "boolean"}}),
        )
    },
    "/api/v1/console/options": _read(
        "Outcome codes, referrals, canned replies and staff for the console", "Options"
    ),
    "/api/v1/queue": _read(
        "Waiting conversations by priority and waiting time; mine; others' (supervisors)",
        "The queue",
    ),
    "/api/v1/conversations/{case_id}": _read(
        "One conversation: consent, risk, screening summary (if shared), reply window",
        "The conversation",
        404,
        parameters=[CASE_ID],
    ),
    "/api/v1/conversations/{case_id}/accept": {
        "post": _write("Take a waiting conversation", None, 404, 409, path_params=(CASE_ID,))
    },
    "/api/v1/conversations/{case_id}/messages": {
        **_read(
            "Messages the person agreed to share (from=handoff: only since the handoff); "
            "403 when they did not share the history",
            "Messages, oldest first",
            404,
            parameters=[
                CASE_ID,
                {"name": "from", "in": "query", "schema": {"type": "string", "enum": ["handoff"]}},
                {"name": "after", "in": "query", "schema": {"type": "integer"}},
            ],
        ),
        "post": _write(
            "Reply to the person in their own channel",
            _json_body(["text"], TEXT),
            404,
            409,
            status=201,
            path_params=(CASE_ID,),
        ),
    },
    "/api/v1/conversations/{case_id}/notes": {
        **_read("Private notes (staff only)", "Notes", 404, parameters=[CASE_ID]),
        "post": _write(
            "Add a private note (stored encrypted)",
            _json_body(["text"], {"text": {"type": "string", "maxLength": 4000}}),
            404,
            status=201,
            path_params=(CASE_ID,),
        ),
    },
    "/api/v1/conversations/{case_id}/transfer": {
        "post": _write(
            "Hand the conversation to another counsellor",
            _json_body(["to"], {"to": {"type": "string", "description": "username"}}),
            404,
            409,
            path_params=(CASE_ID,),
        )
    },
    "/api/v1/conversations/{case_id}/refer": {
        "post": _write(
            "Refer the person to 111 or the police: records it and sends the number and words",
            _json_body(["to"], {"to": {"type": "string", "enum": ["111", "police"]}}),
            404,
            409,
            path_params=(CASE_ID,),
        )
    },
    "/api/v1/conversations/{case_id}/close": {
        "post": _write(
            "Close with an outcome code; the person's next message goes to the bot",
            _json_body(["outcome"], {"outcome": {"type": "string"}}),
            404,
            409,
            path_params=(CASE_ID,),
        )
    },
    "/api/v1/audit": _read(
        "The audit log (supervisors)",
        "Entries, newest first",
        parameters=[
            {"name": "conversation_id", "in": "query", "schema": {"type": "integer"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}},
        ],
    ),
    "/api/v1/admin/alerts": _read(
        "Alerts for admins and replies the outbox gave up on (admins, supervisors)",
        "Open and past alerts; failed deliveries counted by channel and reason",
    ),
    "/api/v1/canned-replies": {
        **_read("Canned replies", "Canned replies"),
        "post": _write(
            "Add a canned reply (admins)",
            _json_body(["title", "text"], {"title": {"type": "string", "maxLength": 100}, **TEXT}),
            status=201,
        ),
    },
    "/api/v1/canned-replies/{reply_id}": {
        "delete": _write(
            "Delete a canned reply (admins)",
            None,
            404,
            path_params=(
                {"name": "reply_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            ),
        )
    },
    "/api/v1/events": _read(
        "WebSocket (upgrade): live queue, message, alert and conversation events; the "
        "session cookie authenticates, closes with 4401 without one",
        "Switching protocols",
    ),
}
DOCUMENT["paths"].update(CONSOLE_PATHS)

RAW_KEY = {
    "name": "raw_key",
    "in": "path",
    "required": True,
    "description": "the topic's key: bare (deposit) or as faq%2Fdeposit; a service's id",
    "schema": {"type": "string"},
}
FAQ_FIELDS: dict[str, Any] = {
    "title": {"type": "string", "maxLength": 200},
    "answer": {"type": "string"},
    "more": {"type": "string"},
    "sources": {"type": "array", "items": {"type": "string"}},
    "reviewed": {"type": "string", "format": "date"},
    "buttons": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "payload": {"type": "string"}},
        },
    },
    "examples": {"type": "array", "items": {"type": "string", "maxLength": 300}},
    "draft_updated_at": {
        "type": "string",
        "description": "the draft this edit started from; 409 if someone saved since",
    },
}
SERVICE_FIELDS: dict[str, Any] = {
    "name": {"type": "string"},
    "kind": {"type": "string"},
    "provinces": {"type": "array", "items": {"type": "string"}},
    "helps_with": {"type": "string"},
    "source": {"type": "string"},
    "phone": {"type": "string"},
    "website": {"type": "string"},
    "verified_at": {"type": "string", "format": "date"},
}


def _content_paths(prefix: str, what: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The same shape for FAQ topics and directory services (editors and admins)."""
    key = (RAW_KEY,)
    return {
        prefix: {
            **_read(
                f"{what}: list, with drafts and review flags (q= searches)",
                "Items",
                parameters=[{"name": "q", "in": "query", "schema": {"type": "string"}}],
            ),
            "post": _write(
                f"New {what.lower()} (saved as a draft)",
                _json_body(["key"], {"key": {"type": "string"}, **fields}),
                409,
                status=201,
            ),
        },
        f"{prefix}/{{raw_key}}": {
            **_read(
                "The version in force, the draft and the linter's problems with it",
                "The item",
                404,
                parameters=[RAW_KEY],
            ),
            "put": _write("Save the draft", _json_body([], fields), 404, 409, path_params=key),
        },
        f"{prefix}/{{raw_key}}/versions": _read(
            "Every published version (who, when) and the draft, newest first",
            "Versions",
            404,
            parameters=[RAW_KEY],
        ),
        f"{prefix}/{{raw_key}}/draft": {
            "delete": _write("Discard the draft", None, 404, path_params=key)
        },
        f"{prefix}/{{raw_key}}/publish": {
            "post": _write(
                "Publish the draft: a reviewer other than its last editor (409), content "
                "that passes the linter (422 with its problems)",
                _json_body([], {"draft_updated_at": FAQ_FIELDS["draft_updated_at"]}),
                404,
                409,
                422,
                path_params=key,
            )
        },
        f"{prefix}/{{raw_key}}/rollback": {
            "post": _write(
                "Publish an earlier version again (reviewers)",
                _json_body(["version"], {"version": {"type": "integer", "minimum": 1}}),
                404,
                422,
                path_params=key,
            )
        },
        f"{prefix}/{{raw_key}}/retire": {
            "post": _write("Stop using it (reviewers)", None, 404, 409, 422, path_params=key)
        },
    }


MISSED_ID = {"name": "missed_id", "in": "path", "required": True, "schema": {"type": "integer"}}
ACTION = {
    "name": "action",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["assign", "dismiss", "new-topic"]},
}
STATS_FILTERS = [
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "channel", "in": "query", "schema": {"type": "string"}},
]
CONTENT_PATHS: dict[str, Any] = {
    "/api/v1/stats": _read(
        "Aggregate numbers for a period and channel (admins, editors, supervisors): no "
        "cell describes fewer than 5 people; with SVG charts",
        "The report",
        parameters=STATS_FILTERS,
    ),
    "/api/v1/stats.csv": _read(
        "The same aggregates as CSV (UTF-8 with BOM)", "CSV", parameters=STATS_FILTERS
    ),
    **_content_paths("/api/v1/faq", "FAQ topics", FAQ_FIELDS),
    **_content_paths("/api/v1/services", "Directory services", SERVICE_FIELDS),
    "/api/v1/intents": _read(
        "What a missed message can be assigned to: FAQ topics and core intents", "Intents"
    ),
    "/api/v1/training/status": _read(
        "The model in use, the one the content wants, and recent retraining runs with "
        "progress and verdict",
        "Training status",
    ),
    "/api/v1/training": {
        "post": _write("Retrain now if the model lags the content (admins)", None, 409, status=202)
    },
    "/api/v1/missed": _read(
        "Messages the bot did not understand, masked; never the conversation",
        "Items, newest first",
        parameters=[
            {
                "name": "status",
                "in": "query",
                "schema": {
                    "type": "string",
                    "enum": ["open", "assigned", "new_topic", "dismissed"],
                },
            },
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        ],
    ),
    "/api/v1/missed/{missed_id}/{action}": {
        "post": _write(
            "assign {intent}: a training example of that topic (the model retrains); "
            "dismiss; new-topic {key, title}: a draft topic with it as its first example",
            _json_body(
                [],
                {
                    "intent": {"type": "string"},
                    "key": {"type": "string"},
                    "title": {"type": "string"},
                },
            ),
            404,
            409,
            path_params=(MISSED_ID, ACTION),
        )
    },
}
DOCUMENT["paths"].update(CONTENT_PATHS)


def _document_input_errors(paths: dict[str, Any]) -> None:
    """Every operation that takes a body may answer 400 (bad input) and 413 (over the
    route's limit): the body limits apply before any handler runs."""
    for operations in paths.values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["responses"] = {**_errors(400, 413), **operation["responses"]}


_document_input_errors(DOCUMENT["paths"])


def create_blueprint() -> Blueprint:
    bp = Blueprint("api_openapi")

    @bp.get("/api/v1/openapi.json")
    async def openapi(_request: Request) -> HTTPResponse:
        return json(DOCUMENT, ensure_ascii=False)

    return bp
