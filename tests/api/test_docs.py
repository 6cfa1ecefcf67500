"""docs/api.md covers every route the app serves, each with a curl example."""

import re
from pathlib import Path

from app.api.app import create_app
from app.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_route_has_a_section_with_a_curl_example() -> None:
    text = DOC.read_text()
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    documented = {}
    for section in sections:
        heading = section.splitlines()[0]
        m = re.match(r"`(GET|POST|PUT|DELETE) ([^`?]+)`", heading)
        assert m, heading
        assert "curl " in section, heading
        documented[(m.group(1), m.group(2))] = section
    app = create_app(Settings())
    served = set()
    for route in app.routes:
        if route.path.startswith("/schema") or route.path == "/metrics":
            continue  # the OpenAPI pages, and /metrics (documented in the README)
        for method in getattr(route, "methods", ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            served.add((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)))
    # the doc names path parameters as the examples do; compare on the shape
    shape = lambda path: re.sub(r"\{\w+\}", "{}", path)  # noqa: E731
    assert {(m, shape(p)) for m, p in served} == {(m, shape(p)) for m, p in documented}
