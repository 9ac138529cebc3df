"""The API's routing: endpoint and action names to code, credentials checked first.

Checks run in the order the PHP constructors and actions run them, so a client sees the
same first error a real site would show (e.g. a bad token beats an unknown action).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from syncd.emulator import names, views
from syncd.emulator.calls import (
    MSG_ACCOUNT,
    MSG_BAD_PAIR,
    MSG_BAD_TOKEN,
    PHP_FATAL,
    ApiFailure,
    Call,
    Reply,
    failure,
    success,
)
from syncd.emulator.file_actions import (
    file_copy,
    file_delete,
    file_download,
    file_edit,
    file_info,
    file_move,
    file_upload,
)
from syncd.emulator.folder_actions import (
    folder_create,
    folder_delete,
    folder_edit,
    folder_info,
    folder_listing,
    folder_move,
)
from syncd.emulator.records import now_str

__all__ = ["ApiFailure", "Call", "Reply", "dispatch"]


def authorize(c: Call) -> Reply:
    key1, key2 = c.param("key1"), c.param("key2")
    for name, key in (("key1", key1), ("key2", key2)):
        if len(key) != 64:
            raise ApiFailure(f"Please provide {name}. It must be 64 characters in length.")
    token = c.store.authorize(key1, key2)
    if token is None:
        raise ApiFailure(
            "Could not authenticate user. The key pair may be invalid or your "
            "account may be locked from too many failed logins."
        )
    return success({"data": {"access_token": token.id, "account_id": str(token.user_id)}})


def disable_access_token(c: Call) -> Reply:
    c.store.disable_token(c.param("access_token"))
    return success({"response": "Token removed or no longer available."})


def account_info(c: Call) -> Reply:
    user = c.store.users.get(names.php_int(c.param("account_id")))
    return success({"data": views.account_view(user) if user else False})


def account_package(c: Call) -> Reply:
    return success({"data": views.package_view(c.options)})


def admin_only(c: Call) -> Reply:
    raise ApiFailure("API user must be an admin user for this endpoint.")


Action = Callable[[Call], Reply]
Auth = Literal["none", "token", "user"]
ENDPOINTS: dict[str, tuple[Auth, dict[str, Action]]] = {
    "authorize": ("none", {"index": authorize}),
    "disable_access_token": ("user", {"index": disable_access_token}),
    "account": (
        "token",
        {
            "info": account_info,
            "package": account_package,
            "create": admin_only,
            "edit": admin_only,
            "delete": admin_only,
        },
    ),
    "package": ("token", {"listing": admin_only}),
    "file": (
        "user",
        {
            "upload": file_upload,
            "download": file_download,
            "info": file_info,
            "edit": file_edit,
            "delete": file_delete,
            "move": file_move,
            "copy": file_copy,
        },
    ),
    "folder": (
        "user",
        {
            "create": folder_create,
            "listing": folder_listing,
            "info": folder_info,
            "edit": folder_edit,
            "delete": folder_delete,
            "move": folder_move,
        },
    ),
}


def unknown_endpoint() -> Reply:
    """4.x crashes on an unknown endpoint: a PHP fatal error page, status 404 (12b)."""
    msg = "Uncaught Error: Call to a member function processAPI() on string in /api/v2/index.php:15"
    return Reply(404, html=PHP_FATAL.format(msg=msg), reason="Not Found'")


def dispatch(c: Call, path: str) -> Reply:
    """Run ``path`` ("file/upload", "authorize", …; lower-case, no prefix)."""
    endpoint, _, rest = path.strip("/").partition("/")
    action = rest.partition("/")[0] or "index"
    if endpoint not in ENDPOINTS:
        return unknown_endpoint()
    auth, actions = ENDPOINTS[endpoint]
    try:
        if auth != "none":
            token = c.required("access_token")
            if auth == "user":
                account = c.param("account_id")
                if not account:
                    raise ApiFailure(MSG_ACCOUNT)
                user = c.store.validate(token, account)
                if user is None:
                    raise ApiFailure(MSG_BAD_PAIR)
            else:
                user = c.store.validate(token, None)
                if user is None:
                    raise ApiFailure(MSG_BAD_TOKEN)
            c.user = user
        handler = actions.get(action)
        if handler is None:
            return Reply(
                404,
                {
                    "0": f"No method found within endpoint ({endpoint}): {action}",
                    "_status": "error",
                    "_datetime": now_str(),
                },
            )
        return handler(c)
    except ApiFailure as exc:
        return failure(exc.message, c.options.error_style)
