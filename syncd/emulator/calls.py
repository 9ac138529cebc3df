"""One API call as endpoint code sees it: cleaned parameters in, ``Reply`` out.

Application errors are raised as ``ApiFailure(message)`` and become HTTP 200 error
envelopes in the configured style, as YetiShare's front controller turns its exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.emulator import names
from syncd.emulator.options import EmulatorOptions
from syncd.emulator.records import File, Folder, User, now_str
from syncd.emulator.store import Store
from syncd.emulator.uploads import Upload

JsonObj = dict[str, Any]
UPLOAD_HANDLER = "core/page/ajax/api_upload_handler.ajax.php"
MSG_TOKEN = "Please provide the access_token param."
MSG_ACCOUNT = "Please provide the account_id param."
MSG_BAD_PAIR = "Could not validate access_token and account_id, please reauthenticate or try again."
MSG_BAD_TOKEN = "Could not validate access_token, please reauthenticate or try again."
MSG_NO_FILE = "Could not find file based on file_id."
MSG_NO_FOLDER = "Could not find folder based on folder_id."
MSG_NO_DEST = "Could not find the destination folder id defined by new_parent_folder_id."
PHP_FATAL = (
    '<div style="padding:20px; background-color: #FFBABA; border: 1px solid; color: #D8000C;">'
    '<span style="font-family: Arial, Helvetica, sans-serif;"><strong>SYSTEM ERROR:</strong>'
    '<br/><br/><table cellspacing="0" cellpadding="2"><tr><td style="width: 150px; '
    'font-weight: bold;">Error Msg:</td><td>{msg}</td></tr></table></span></div>'
)


class ApiFailure(Exception):
    """An application error: HTTP 200 with an error envelope carrying ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Reply:
    status: int
    json: JsonObj | None = None
    html: str | None = None
    reason: str | None = None  # a status line's reason phrase, when not the standard one


@dataclass
class Call:
    """One API request as the endpoint code sees it."""

    store: Store
    options: EmulatorOptions
    site: str  # "http://host:port/"
    client_ip: str
    raw: dict[str, str]
    upload: Upload | None = None
    user: User = field(init=False)

    def param(self, name: str) -> str:
        """The parameter after ``trim(strip_tags())``; "" when absent."""
        value = self.raw.get(name)
        return names.clean_param(value) if value else ""

    def required(self, name: str) -> str:
        value = self.param(name)
        if not value:
            raise ApiFailure(f"Please provide the {name} param.")
        return value

    def file(self) -> File:
        f = self.store.file(self.user.id, names.php_int(self.required("file_id")))
        if f is None:
            raise ApiFailure(MSG_NO_FILE)
        return f

    def folder(self, param: str = "folder_id", missing: str = MSG_NO_FOLDER) -> Folder:
        d = self.store.folder(self.user.id, names.php_int(self.required(param)))
        if d is None:
            raise ApiFailure(missing)
        return d


def success(payload: JsonObj) -> Reply:
    return Reply(200, {**payload, "_status": "success", "_datetime": now_str()})


def failure(message: str, style: str) -> Reply:
    if style == "_status":
        return Reply(200, {"response": message, "_status": "error", "_datetime": now_str()})
    return Reply(200, {"status": "error", "response": message, "_datetime": now_str()})


# -- endpoints -------------------------------------------------------------------------------
