"""A bounded pool of interpreter slots: grows on demand up to a capacity, then callers wait.

An interpreter is not thread-safe, so each call borrows one. The pool creates a new one only when
all are busy and fewer than ``capacity`` exist; beyond that a caller waits (up to ``wait_s``) for
one to come back instead of allocating without bound. The uncontended path is one ``list.pop``
and one ``list.append`` (atomic under the GIL), with no lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from device_runtime.runtime_limits import InterpreterPoolTimeout

T = TypeVar("T")


class InterpreterPool(Generic[T]):
    """At most ``capacity`` slots made by ``factory``; :meth:`acquire` waits when all are busy.

    ``first`` (already built and checked) starts the pool. A factory error propagates to the
    caller that triggered the creation and does not use up capacity.
    """

    def __init__(self, factory: Callable[[], T], capacity: int, wait_s: float, first: T) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected >= 1, got {capacity}")
        self._factory = factory
        self.capacity = capacity
        self._wait_s = wait_s
        self._idle: list[T] = [first]
        self._created = 1
        self._waiting = 0
        self._cond = threading.Condition()

    @property
    def size(self) -> int:
        """How many slots exist (idle or borrowed)."""
        return self._created

    def acquire(self) -> T:
        """An idle slot, a new one while below capacity, or the next one released (waits up to
        ``wait_s``; then raises :class:`InterpreterPoolTimeout`)."""
        try:
            return self._idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + self._wait_s
        with self._cond:
            self._waiting += 1
            try:
                while True:
                    try:
                        return self._idle.pop()
                    except IndexError:
                        pass
                    if self._created < self.capacity:
                        self._created += 1
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._cond.wait(remaining):
                        if self._idle:
                            continue
                        raise InterpreterPoolTimeout(
                            f"all {self.capacity} interpreters stayed busy for {self._wait_s:g} s; "
                            "raise RuntimeLimits.max_interpreters (memory permitting) or send fewer "
                            "concurrent requests")
            finally:
                self._waiting -= 1
        try:
            return self._factory()
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def release(self, slot: T) -> None:
        """Give a slot back (wakes one waiting caller)."""
        self._idle.append(slot)
        if self._waiting:
            with self._cond:
                self._cond.notify()
