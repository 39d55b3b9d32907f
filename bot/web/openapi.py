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


def create_blueprint() -> Blueprint:
    bp = Blueprint("api_openapi")

    @bp.get("/api/v1/openapi.json")
    async def openapi(_request: Request) -> HTTPResponse:
        return json(DOCUMENT, ensure_ascii=False)

    return bp
