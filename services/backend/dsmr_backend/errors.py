"""The backend's own errors."""

from dsmr_shared.errors import DsmrError


class StorageError(DsmrError):
    """The database is unreachable, misconfigured or refused a write."""


class RejectedMessageError(DsmrError):
    """A received message was refused: ``kind`` is a short category, ``reason`` the details."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class BadDataError(DsmrError):
    """The database refused a value (too large, malformed): retrying would never succeed."""
