"""Values the core's services and their callers share: who acted, and the core's refusals."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BankError", "Person"]


@dataclass(frozen=True, slots=True)
class Person:
    """Who acted or was acted on: a user, or a chat posting as itself (anonymous admin)."""

    id: int
    name: str


class BankError(ValueError):
    """A bank or case request that cannot be done; the message says why, for the user."""
