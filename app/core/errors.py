"""Domain errors: small, data-carrying, free of any framework.

The HTTP layer maps each to a status code in one place (``app/api/errors.py``).
"""


class ChimeError(Exception):
    """Base of every error Chime raises on purpose."""


class ValidationError(ChimeError):
    """Bad input: ``field`` names what is wrong (dotted path), ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ScheduleError(ValidationError):
    """An invalid schedule expression or timezone."""


class ScheduleTooSlow(ScheduleError):
    """Computing an occurrence took more than its budget of work: the rule is too sparse or too
    costly to compute within the bound, so it is refused (at create) or cut off (later)."""

    def __init__(self, reason: str) -> None:
        super().__init__("schedule_expr", reason)


class PipelineError(ValidationError):
    """A payload that is not a valid pipeline (unknown action, bad params, duplicate names)."""


class NotFound(ChimeError):
    """No such task or run, or one that belongs to another agent."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident} not found")
        self.what = what
        self.ident = ident


class Conflict(ChimeError):
    """A state transition that the current status forbids."""

    def __init__(self, action: str, status: str, what: str = "task") -> None:
        super().__init__(f"cannot {action} a {what} that is {status}")
        self.action = action
        self.status = status


class Forbidden(ChimeError):
    """An authenticated caller asking for something only another agent or the admin may do."""


class ConfigError(ChimeError):
    """A bad setting in the environment; the message is one line naming the variable."""
