"""Secret values out of what a run keeps, returns or logs: each occurrence becomes ``***``.

A run that reads ``{{ secrets.NAME }}`` builds one :class:`Masker` from the values it opened;
every step's output and error, the ``log`` action's line and ``event.emit``'s data pass through
it. It replaces each value as written, and also as JSON escapes it, as a URL encodes it and in
lowercase, since a response that echoes the request (or an error that quotes the URL or a host
name) shows those forms.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"


class Masker:
    """Replaces every given secret value (and its encoded forms) with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        plain = {v for v in values if v}
        needles: set[str] = set()
        for value in plain:
            needles |= {value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value)}
            # a host name comes back lowercased (``cannot resolve s3cret.example.com``)
            needles |= {quote_plus(value), value.lower()}
        #: longest first, so a value that contains another is replaced whole
        self.needles = sorted(needles, key=len, reverse=True)
        self.plain = frozenset(plain)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def text(self, text: str) -> str:
        """``text`` with every secret value replaced."""
        for needle in self.needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def __call__(self, value: Any) -> Any:
        """``value`` (JSON-like) with every secret masked in its strings, keys included; a
        number that spells a secret is masked too. Too deep to walk: masked whole."""
        if not self.needles:
            return value
        try:
            return self._walk(value)
        except RecursionError:
            return f"{MASK} (nested too deeply to check for secrets)"

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return MASK if str(value) in self.plain else value
        return value
