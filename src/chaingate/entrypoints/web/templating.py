"""One Jinja2 environment and one static-file mount for every server-rendered page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

WEB_DIR = Path(__file__).parent
STATIC_PATH = "/static"

templates = Environment(
    loader=FileSystemLoader(WEB_DIR / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def mount_static(app: FastAPI) -> None:
    """Serve web/static/ under /static (CSS, JS, the embeddable widget)."""
    app.mount(STATIC_PATH, StaticFiles(directory=WEB_DIR / "static"), name="static")
