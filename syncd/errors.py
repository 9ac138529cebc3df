"""syncd's error tree, classified by what the caller does next.

    SyncdError                      base; str(exc) is one line naming the thing at fault
    ├── ConfigError                 bad config file / key / credential          exit 78
    ├── StateError                  state DB unusable (corrupt, read-only, full) exit 75
    │   └── StateLocked             another syncd holds the state lock         exit 75
    ├── LocalError                  one local file cannot be read / changed    (per file: failed)
    │   └── ChangedDuringUpload     the file changed while it was being sent   (retry later)
    └── RemoteError                 anything the hosting API answered or failed to answer
        ├── TransientError          retry with backoff: connection, timeout, 429, 5xx, HTML
        │   ├── RateLimited         429; carries retry_after seconds
        │   └── LostResponse        the request may have taken effect: look before repeating
        ├── RemoteUnavailable       transient errors outlasted the retry policy   exit 75
        ├── TokenRejected           "Could not validate access_token…" / HTTP 401: re-authorize
        ├── AuthRefused             authorize itself refused (bad keys, level)   exit 77
        ├── ApiError                HTTP 200 with status "error": permanent for that item
        ├── WrongPath               HTTP 404: wrong api_url or unknown action
        └── IntegrityError          returned hash/size disagrees with what was sent: re-send

Foreign exceptions (httpx, sqlite3, OSError) are translated into these at exactly one
boundary each (the API client, the state store, the scanner/engine) and chained with
``raise … from exc``. Messages never contain secrets: the client builds them from the
endpoint name and the server's message only.
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""

    exit_code = 1


class ConfigError(SyncdError):
    exit_code = 78


class StateError(SyncdError):
    exit_code = 75


class StateLocked(StateError):
    def __init__(self, pid: int | None, lock_path: str) -> None:
        who = f"pid {pid}" if pid else "unknown pid"
        super().__init__(f"another syncd ({who}) is running: state lock {lock_path} is held")
        self.pid = pid


class LocalError(SyncdError):
    """One local file could not be read; the others go on."""


class ChangedDuringUpload(LocalError):
    pass


class RemoteError(SyncdError):
    exit_code = 75


class TransientError(RemoteError):
    """Worth retrying after a backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    pass


class LostResponse(TransientError):
    """The request body reached the server but no usable answer came back.

    The server may have acted on it (stored an upload, created a folder), so the caller
    must look (list the folder) before repeating it.
    """


class RemoteUnavailable(RemoteError):
    exit_code = 75


class TokenRejected(RemoteError):
    """The access token is no longer valid; authorize again once and retry."""


class AuthRefused(RemoteError):
    exit_code = 77


class ApiError(RemoteError):
    """The API answered with an error message: permanent for the item concerned."""

    exit_code = 1

    def __init__(self, endpoint: str, message: str) -> None:
        super().__init__(f"{endpoint}: {message}")
        self.endpoint = endpoint
        self.server_message = message


class WrongPath(RemoteError):
    exit_code = 78


class IntegrityError(RemoteError):
    """The server's answer about an upload disagrees with the bytes sent."""

    exit_code = 1


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error that ends a command (SPEC §6)."""
    if isinstance(exc, SyncdError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 1


def result_exit_code(fatal: SyncdError | None, *, failed: bool) -> int:
    """The exit code of one pair's run (SPEC §6): the code of the error that stopped it,
    else 1 if ``failed`` (what counts as failed is the command's to say), else 0."""
    if fatal is not None:
        return fatal.exit_code
    return 1 if failed else 0
