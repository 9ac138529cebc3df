"""folder/* endpoints (API.md 4.14-4.19 with API-observed.md's corrections)."""

from __future__ import annotations

from typing import Any

from syncd.emulator import names, views
from syncd.emulator.calls import MSG_NO_DEST, MSG_NO_FOLDER, ApiFailure, Call, Reply, success
from syncd.emulator.records import ACTIVE


def folder_create(c: Call) -> Reply:
    name = c.required("folder_name")
    parent = names.php_int(c.param("parent_id"))  # ownership is not checked by 4.x
    is_public = names.php_int(c.param("is_public"))
    password = c.param("access_password")
    d = c.store.create_folder(
        c.user.id,
        name,
        parent or None,
        is_public if 0 <= is_public <= 2 else 0,
        password if len(password) == 32 else None,
    )
    return success(
        {
            "response": "Folder successfully created.",
            "data": views.folder_view(c.store, d, c.site, with_password=True),
        }
    )


def folder_listing(c: Call) -> Reply:
    parent_id: int | None = names.php_int(c.param("parent_folder_id")) or None
    if parent_id is not None and c.store.folder(c.user.id, parent_id) is None:
        raise ApiFailure(MSG_NO_FOLDER)
    folders = [
        views.folder_view(c.store, d, c.site, with_password=False)
        for d in c.store.sub_folders(c.user.id, parent_id)
    ]
    files = [views.listing_file_view(f, c.site) for f in c.store.active_files(c.user.id, parent_id)]
    return success({"data": {"folders": folders, "files": files}})


def folder_info(c: Call) -> Reply:
    return success({"data": views.folder_view(c.store, c.folder(), c.site, with_password=True)})


def folder_edit(c: Call) -> Reply:
    d = c.folder()
    changes: dict[str, Any] = {}
    if name := c.param("folder_name"):
        changes["name"] = names.to_db(name)
    if parent := c.param("parent_id"):
        if parent.lower() == "null":
            changes["parent_id"] = None
        else:
            p = c.store.folder(c.user.id, names.php_int(parent))
            if p is not None and p.status == ACTIVE:
                changes["parent_id"] = p.id
    if is_public := c.param("is_public"):
        value = names.php_int(is_public)
        changes["is_public"] = value if 0 <= value <= 2 else 0
    if password := c.param("access_password"):
        if password.lower() == "null":
            changes["access_password"] = None
        elif len(password) == 32:
            changes["access_password"] = password
    c.store.update_folder(d, **changes)
    return success(
        {
            "response": "Folder successfully updated.",
            "data": views.folder_view(c.store, d, c.site, with_password=True),
        }
    )


def folder_delete(c: Call) -> Reply:
    d = c.folder(missing="Failed deleting the folder.")
    c.store.delete_folder(d)
    return success({"response": "Folder successfully set as deleted."})


def folder_move(c: Call) -> Reply:
    folder_id = c.required("folder_id")
    dest = c.required("new_parent_folder_id")
    if folder_id == dest:
        raise ApiFailure("Param folder_id can not match new_parent_folder_id.")
    d = c.folder()
    target: int | None = None
    if dest.lower() != "null":
        p = c.store.folder(c.user.id, names.php_int(dest))
        if p is None or p.status != ACTIVE:
            raise ApiFailure(MSG_NO_DEST)
        target = p.id  # no cycle check, as in 4.x (observed 17b)
    c.store.update_folder(d, parent_id=target)
    return success(
        {
            "response": "Folder successfully moved.",
            "data": views.folder_view(c.store, d, c.site, with_password=True),
        }
    )
