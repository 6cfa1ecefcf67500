"""One rule for keys (``app/store/keys.py``): every key a script touches comes from KEYS or is
built from a base taken from a KEYS entry (``chime_key_base``), so all of a call's keys share
its hash tag and no script hard-codes one.

What is checked statically, on each script with its includes expanded:

* no ``{chime}`` or ``chime:`` in a script's code (the tag and prefix come from KEYS);
* the key argument of every ``redis.call`` (PUBLISH names a channel, not a key) is a *key
  expression*: ``KEYS[...]``, a name every value of which is a key expression, or a
  concatenation whose head is one (a base and a suffix). Values flow through locals, table
  fields (``c.run_key`` takes the values given to ``run_key =`` in a table), function
  parameters (every call's argument) and the key builders below; ``''`` and ``nil`` stand for
  "no key". A value from ARGV, from a reply or from a string literal is not a key expression,
  so a key built from ARGV alone fails here.

The last tests prove the check fails on scripts that break the rule.
"""

import re
from collections.abc import Iterator

import pytest

from app.store import scripts

#: functions that return a key (or a table of keys) built from their first argument, a key
KEY_BUILDERS = {
    "chime_key_base",
    "chime_run_prefix",
    "chime_key_under",
    "chime_agent_gate",
    "chime_dedupe_key",
}
#: commands whose first argument is a key, and that take one key only
ONE_KEY = {
    "DEL", "EXISTS", "EXPIRE", "GET", "HDEL", "HEXISTS", "HGET", "HINCRBY", "HINCRBYFLOAT",
    "HMGET", "HSET", "LLEN", "LPOP", "LPOS", "LPUSH", "LRANGE", "LREM", "PERSIST", "PEXPIRE",
    "RPUSH", "SADD", "SET", "SRANDMEMBER", "SREM", "XADD", "ZADD", "ZCARD", "ZMSCORE",
    "ZRANGE", "ZRANGEBYSCORE", "ZREM", "ZREMRANGEBYSCORE", "ZSCORE",
}  # fmt: skip
#: commands whose first argument is not a key
NO_KEY = {"PUBLISH"}

_NAME = r"[A-Za-z_]\w*"
_ASSIGN = re.compile(rf"^[ \t]*(?:local\s+)?({_NAME}(?:\s*,\s*{_NAME})*)\s*=(?!=)", re.MULTILINE)
_FUNCTION = re.compile(rf"\bfunction\s+({_NAME})\s*\(([^)]*)\)")
_FIELD_ASSIGN = re.compile(rf"^[ \t]*{_NAME}(?:\.{_NAME})*\.({_NAME})\s*=(?!=)", re.MULTILINE)
_FOR_IN = re.compile(rf"\bfor\s+({_NAME}(?:\s*,\s*{_NAME})*)\s+in\s+i?pairs\(([^)]*)\)")
_CALL = re.compile(r"\bredis\.call\(")


def _code(text: str) -> str:
    """``text`` without comments; strings stay (a ``--`` inside one is not a comment)."""
    out, i, quote = [], 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\":
                out.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif text.startswith("--", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _scan(code: str, start: int) -> Iterator[tuple[int, str, int]]:
    """Each character from ``start`` outside string literals, with its bracket depth: an
    opening bracket has the depth outside it, a closing one the depth it returns to (-1 when it
    closes what was open at ``start``)."""
    depth, quote, i = 0, "", start
    while i < len(code):
        ch = code[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        else:
            if ch in ")]}":
                depth -= 1
            yield i, ch, depth
            if ch in "([{":
                depth += 1
        i += 1


def _group(code: str, start: int, close: str) -> tuple[list[str], int]:
    """The comma-separated items from ``start`` to the ``close`` that ends the group, and the
    position after it."""
    items, begin = [], start
    for i, ch, depth in _scan(code, start):
        if ch in ")]}" and depth < 0:
            items.append(code[begin:i].strip())
            return [x for x in items if x], i + 1
        if ch == "," and depth == 0:
            items.append(code[begin:i].strip())
            begin = i + 1
    raise AssertionError(f"unclosed group at {code[start : start + 60]!r}")


def _statement_values(code: str, start: int) -> list[str]:
    """The expressions of an assignment's right side, from ``start`` to the statement's end."""
    end = len(code)
    for i, ch, depth in _scan(code, start):
        if ch in ")]}" and depth < 0:
            end = i
            break
        if ch == "\n" and depth == 0:
            before = code[start:i].rstrip()
            after = code[i:].lstrip()
            continues = (
                not before
                or before.endswith((",", "..", "and", "or", "+", "-", "*", "/", "="))
                or re.match(r"(and|or)\b|\.\.|[-+*/]", after)
            )
            if not continues:
                end = i
                break
    values, _ = _group(code[start:end] + ")", 0, ")")
    return values


class KeyFlow:
    """Which names of one expanded script only ever hold keys."""

    def __init__(self, code: str) -> None:
        self.code = code
        #: name (local, parameter or table field) -> every expression assigned to it
        self.values: dict[str, list[str]] = {}
        self._collect()
        self.keys = self._solve()

    def _add(self, name: str, value: str) -> None:
        self.values.setdefault(name, []).append(value)

    def _collect(self) -> None:
        code = self.code
        for m in _ASSIGN.finditer(code):
            names = [n.strip() for n in m.group(1).split(",")]
            if names[0] in ("if", "elseif", "while", "until", "return", "for"):
                continue
            values = _statement_values(code, m.end())
            for i, name in enumerate(names):
                self._add(name, values[i] if i < len(values) else "<unknown>")
        for m in _FIELD_ASSIGN.finditer(code):
            self._add(m.group(1), _statement_values(code, m.end())[0])
        for m in _FOR_IN.finditer(code):
            names = [n.strip() for n in m.group(1).split(",")]
            self._add(names[-1], "KEYS[_]" if m.group(2).strip() == "KEYS" else "<element>")
        # table fields: `name = value` inside a constructor
        for m in re.finditer(r"\{", code):
            items, _ = _group(code, m.end(), "}")
            for item in items:
                field = re.match(rf"({_NAME})\s*=(?!=)\s*(.*)$", item, re.DOTALL)
                if field:
                    self._add(field.group(1), field.group(2).strip())
        # parameters: every argument a call passes
        functions = {m.group(1): m for m in _FUNCTION.finditer(code)}
        for name, fm in functions.items():
            params = [p.strip() for p in fm.group(2).split(",") if p.strip()]
            for call in re.finditer(rf"(?<![\w.:]){name}\(", code):
                if code[max(0, call.start() - 9) : call.start()].endswith("function "):
                    continue
                args, _ = _group(code, call.end(), ")")
                for i, param in enumerate(params):
                    self._add(param, args[i] if i < len(args) else "nil")

    def _solve(self) -> set[str]:
        """The names that hold keys only: all names to start with, then every name one of whose
        values is not a key expression is dropped, until none is."""
        keys = set(self.values)
        changed = True
        while changed:
            changed = False
            for name in sorted(keys):
                if not all(self.is_key(v, keys, blank_ok=True) for v in self.values[name]):
                    keys.discard(name)
                    changed = True
        return keys

    def is_key(self, expr: str, keys: set[str] | None = None, blank_ok: bool = False) -> bool:
        """Whether ``expr`` is a key expression (``''`` and ``nil`` count with ``blank_ok``)."""
        keys = self.keys if keys is None else keys
        expr = expr.strip()
        if expr in ("''", '""', "nil"):
            return blank_ok
        if re.fullmatch(r"\{\s*unpack\(\s*KEYS\s*,[^{}]*\)\s*\}", expr):
            return True
        head = _concat_head(expr)
        if head != expr:
            return self.is_key(head, keys)
        if re.fullmatch(r"KEYS\[[^\]]+\]", expr):
            return True
        call = re.fullmatch(rf"({_NAME})\((.*)\)", expr, re.DOTALL)
        if call:
            if call.group(1) not in KEY_BUILDERS:
                return False
            args, _ = _group(call.group(2) + ")", 0, ")")
            return bool(args) and self.is_key(args[0], keys)
        name = re.fullmatch(rf"(?:{_NAME}\.)*({_NAME})(?:\[[^\]]+\])?", expr)
        return bool(name) and name.group(1) in keys


def _concat_head(expr: str) -> str:
    """The first operand of a top-level concatenation (``expr`` itself when there is none)."""
    depth, quote = 0, ""
    for i, ch in enumerate(expr):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and expr.startswith("..", i):
            return expr[:i].strip()
    return expr


def violations(text: str) -> list[str]:
    """What breaks the key rule in one expanded script."""
    code = _code(text)
    found = [f"hard-coded {word!r}" for word in ("{chime}", "chime:") if word in code]
    flow = KeyFlow(code)
    for m in _CALL.finditer(code):
        args, _ = _group(code, m.end(), ")")
        command = args[0].strip("'\"").upper()
        if command in NO_KEY:
            continue
        if command not in ONE_KEY:
            found.append(f"{command}: not in ONE_KEY (say which of its arguments are keys)")
        elif command == "DEL" and len(args) != 2:
            found.append(f"DEL of {len(args) - 1} keys: {args[1:]}")
        elif not flow.is_key(args[1]):
            found.append(f"{command} on {args[1]!r}: not from KEYS or a base")
    return found


@pytest.mark.parametrize("name", scripts.NAMES)
def test_every_key_a_script_touches_comes_from_keys_or_a_base(name: str) -> None:
    assert violations(scripts.source(name)) == []


def test_the_check_sees_the_keys_scripts_build() -> None:
    """It follows values through includes, parameters and table fields (not only KEYS[n])."""
    finish, emit = (KeyFlow(_code(scripts.source(n))) for n in ("finish_run", "emit_event"))
    assert {"run_prefix", "base", "slots", "run_key", "sem_key", "from"} <= finish.keys
    assert {"run_key_prefix", "rkey", "event_key", "dedupe_key", "task_key"} <= emit.keys
    assert not {"run_id", "agent", "now", "wake", "stored_event_key"} & (finish.keys | emit.keys)


BREAKS = {
    "a key from ARGV": "local p = ARGV[3]\nredis.call('DEL', p .. 'x')",
    "a run key from an ARGV prefix": (
        "local run_prefix = ARGV[4]\nlocal run_key = run_prefix .. ARGV[5]\n"
        "redis.call('HSET', run_key, 'status', 'queued')"
    ),
    "a hard-coded tag": "redis.call('ZADD', '{chime}:due', 1, 'task')",
    "a hard-coded prefix": "redis.call('GET', 'chime:x')",
    "a key read from a record": (
        "local other = redis.call('HGET', KEYS[1], 'event_key')\nredis.call('DEL', other)"
    ),
    "ARGV through a parameter": (
        "local function f(some_key)\n  redis.call('DEL', some_key)\nend\nf(KEYS[1])\nf(ARGV[1])"
    ),
    "ARGV through a table field": (
        "local c = {run_key = ARGV[2]}\nredis.call('HSET', c.run_key, 'a', 1)"
    ),
    "a base from ARGV": (
        "local base = chime_key_base(ARGV[1], 'due')\nredis.call('ZCARD', base .. 'due')"
    ),
    "a command of several keys": "redis.call('SUNIONSTORE', KEYS[1], KEYS[2])",
}


@pytest.mark.parametrize("script", BREAKS.values(), ids=BREAKS.keys())
def test_a_script_that_breaks_the_rule_fails_the_check(script: str) -> None:
    assert violations(script)


def test_a_script_that_keeps_the_rule_passes_the_check() -> None:
    script = (
        "local function f(some_key)\n  redis.call('DEL', some_key)\nend\n"
        "local due_key, id = KEYS[1], ARGV[1]\n"
        "local base = chime_key_base(due_key, 'due')\n"
        "local c = {run_key = base .. 'run:' .. id, dedupe_key = ''}\n"
        "if id == '' then\n  c.dedupe_key = KEYS[2]\nend\n"
        "redis.call('HSET', c.run_key, 'a', 1)\nredis.call('ZADD', base .. 'x', 1, id)\n"
        "f(due_key)\nf(base .. 'y')\nredis.call('PUBLISH', ARGV[2], id)"
    )
    assert violations(script) == []
