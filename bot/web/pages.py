"""The service's own pages: the web chat at ``/chat`` (and ``/`` pointing to it), and the
counsellor console at ``/console`` (a page over the ``/api/v1`` console API), and the
admin pages at ``/admin`` (content, missed messages, numbers; over the same API)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, redirect

TEMPLATES = Path(__file__).resolve().parent / "templates"
_jinja = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def render(name: str, **context: object) -> str:
    return _jinja.get_template(name).render(**context)


def create_blueprint() -> Blueprint:
    bp = Blueprint("pages")

    @bp.get("/")
    async def home(_request: Request) -> HTTPResponse:
        return redirect("/chat")

    @bp.get("/chat")
    async def chat(_request: Request) -> HTTPResponse:
        return html(render("chat.html"))

    @bp.get("/console")
    async def console(_request: Request) -> HTTPResponse:
        response = html(render("console.html"))
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    @bp.get("/admin")
    async def admin(_request: Request) -> HTTPResponse:
        response = html(render("admin.html"))
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    return bp
