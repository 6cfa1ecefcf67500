"""docs/api.md covers every route the app serves, each with a curl example and the statuses the
OpenAPI document says it answers."""

import re
from pathlib import Path

from litestar.testing import TestClient

from app.api.app import create_app
from app.api.openapi import answers_of
from app.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _shape(path: str) -> str:
    """A path with its parameters unnamed: the doc names them as its examples do."""
    return re.sub(r"\{\w+\}", "{}", path)


def _sections() -> dict[tuple[str, str], str]:
    documented = {}
    for section in re.split(r"^### ", DOC.read_text(), flags=re.MULTILINE)[1:]:
        heading = section.splitlines()[0]
        m = re.match(r"`(GET|POST|PUT|DELETE) ([^`?]+)`", heading)
        assert m, heading
        documented[(m.group(1), _shape(m.group(2)))] = section
    return documented


def test_every_route_has_a_section_with_a_curl_example() -> None:
    documented = _sections()
    for heading, section in documented.items():
        assert "curl " in section, heading
    app = create_app(Settings())
    served = set()
    for route in app.routes:
        if route.path.startswith("/schema") or route.path == "/metrics":
            continue  # the OpenAPI pages, and /metrics (documented in the README)
        for method in getattr(route, "methods", ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            served.add((method, _shape(re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))))
    assert served == set(documented)


def test_every_section_lists_the_statuses_its_operation_answers() -> None:
    documented = _sections()
    app = create_app(Settings())
    with TestClient(app) as client:
        doc = client.get("/schema/openapi.json").json()
    for (method, path), ans in answers_of(app).items():
        section = documented[(method, _shape(path))]
        line = re.search(r"^Answers: (.*)$", section, flags=re.MULTILINE)
        assert line, f"{method} {path}: no Answers: line"
        listed = {int(code) for code in re.findall(r"\b[1-5]\d\d\b", line.group(1))}
        in_schema = {int(code) for code in doc["paths"][path][method.lower()]["responses"]}
        assert listed == in_schema == {*ans.ok, *ans.errors}, (method, path)
