"""A bound on the work of one schedule computation, so that no rule can stall its caller.

Every loop that searches for an occurrence spends steps from a :class:`Budget`; a step is a small
constant amount of work (one month, one day or one period looked at). Past its steps, or past its
CPU-time deadline, the budget raises :class:`ScheduleTooSlow`. Counting steps makes the refusal
of a rule at create time the same on every machine; the deadline is the second guard.

The clock is first read after :data:`_CHECK_EVERY` steps, and the deadline counts from there: a
short computation (every create of a task computes one) never reads it, and reading a thread's
CPU clock is a system call, which costs more than such a computation on a busy machine.
"""

import time
from collections.abc import Callable

from app.core.errors import ScheduleTooSlow

#: Steps one computation may take unless told otherwise: about 20 ms of CPU here at worst.
DEFAULT_STEPS = 15_000
#: CPU seconds one computation may take unless told otherwise.
DEFAULT_SECONDS = 0.05
#: The deadline is read once per this many steps, so a short computation never reads it.
_CHECK_EVERY = 512


class Budget:
    """Steps and a deadline shared by every search one computation makes.

    ``timer`` is the clock of the deadline: the thread's CPU time by default (a busy machine
    does not make a rule too slow); pass ``time.monotonic`` for a wall-clock bound.
    """

    __slots__ = ("_deadline", "_left", "_next_check", "_timer", "seconds", "steps")

    def __init__(
        self,
        steps: int = DEFAULT_STEPS,
        seconds: float | None = DEFAULT_SECONDS,
        timer: Callable[[], float] = time.thread_time,
    ) -> None:
        if steps <= 0:
            raise ValueError("a budget needs at least one step")
        self.steps = steps
        self.seconds = seconds
        self._left = steps
        self._timer = timer
        #: set at the first check (after _CHECK_EVERY steps)
        self._deadline: float | None = None
        self._next_check = _CHECK_EVERY

    @property
    def used(self) -> int:
        """Steps spent so far."""
        return self.steps - self._left

    def spend(self, steps: int = 1) -> None:
        """Take ``steps``; raise :class:`ScheduleTooSlow` when the budget is exhausted."""
        self._left -= steps
        if self._left < 0:
            raise ScheduleTooSlow(
                f"computing one occurrence of this schedule takes more than {self.steps:,} steps"
            )
        self._next_check -= steps
        if self._next_check <= 0 and self.seconds is not None:
            self._next_check = _CHECK_EVERY
            now = self._timer()
            if self._deadline is None:
                self._deadline = now + self.seconds
            elif now > self._deadline:
                raise ScheduleTooSlow(
                    "computing one occurrence of this schedule takes more than "
                    f"{(self.seconds or 0) * 1000:g} ms"
                )


def unlimited() -> Budget:
    """A budget for tests and benchmarks that must see a computation through."""
    return Budget(steps=2**62, seconds=None)
