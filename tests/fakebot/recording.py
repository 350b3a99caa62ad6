"""Recorded calls and injected faults: what a test reads to see which Bot API calls the bot
made, and how it makes the next calls fail, wait, or lose their answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.fakebot.state import FakeState
from tests.fakebot.values import Call, _Failure
from tests.fakebot.wire import _ApiError, _default_error_description


class CallRecorder(FakeState):
    """Reading the recorded calls, and queuing failures, holds and lost answers."""

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of ``method`` (case-insensitive), oldest first."""
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    def clear_calls(self) -> None:
        """Forget recorded calls and sent messages; chat state is kept."""
        self.calls.clear()
        self.sent_messages.clear()

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> Call:
        """The first call of ``method`` matching ``predicate``, recorded already or later.

        Raises AssertionError listing every recorded call when none arrives in time.
        """

        def find() -> Call | None:
            for call in self.calls_to(method):
                if predicate is None or predicate(call):
                    return call
            return None

        found = await self._wait_until(self._calls_changed, find, timeout)
        if found is None:
            listing = "\n".join(f"  {call.describe()}" for call in self.calls) or "  (none)"
            condition = "" if predicate is None else " matching the predicate"
            raise AssertionError(
                f"no {method} call{condition} within {timeout} s; recorded calls:\n{listing}"
            )
        return found

    def fail_next(
        self,
        method: str,
        error_code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error instead of a result.

        Failures queue up: calling this twice for one method fails the next calls with the
        first error, then the second. For 429 give ``retry_after``: PTB raises RetryAfter
        only when the answer carries it.
        """
        if description is None:
            description = _default_error_description(error_code, retry_after)
        self._failures.setdefault(method.lower(), []).append(
            _Failure(error_code, description, retry_after, times)
        )

    def clear_failures(self) -> None:
        """Forget queued failures and lost answers: Telegram works again."""
        self._failures.clear()
        self._lost_answers.clear()

    def hold(self, method: str) -> None:
        """Calls of ``method`` are recorded and then wait, unanswered, until ``release``."""
        self._held[method.lower()] = asyncio.Event()

    def release(self, method: str, *, make: bool = True) -> None:
        """Let held calls go on: made and answered, or (``make=False``) dropped unmade with
        their connections closed (what a caller killed meanwhile never hears anyway)."""
        gate = self._held.pop(method.lower(), None)
        self._held_made[method.lower()] = make
        if gate is not None:
            gate.set()

    def lose_answer_next(self, method: str, *, made: bool, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get no answer: the server closes the
        connection, after making the call (``made``: only the answer is lost) or before."""
        self._lost_answers.setdefault(method.lower(), []).extend([made] * times)

    def _take_failure(self, method: str) -> _ApiError | None:
        queue = self._failures.get(method.lower())
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return _ApiError(failure.error_code, failure.description, failure.retry_after)
