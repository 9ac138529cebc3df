"""file/* endpoints (API.md 4.6-4.12 with API-observed.md's corrections)."""

from __future__ import annotations

from typing import Any

from syncd.emulator import names, views
from syncd.emulator.calls import (
    MSG_NO_DEST,
    MSG_NO_FILE,
    PHP_FATAL,
    UPLOAD_HANDLER,
    ApiFailure,
    Call,
    Reply,
    success,
)
from syncd.emulator.records import ACTIVE
from syncd.emulator.uploads import publish_blob


def file_upload(c: Call) -> Reply:
    up = c.upload
    if up is None:
        raise ApiFailure("Did not receive uploaded file.")
    if up.size == 0 or not up.filename:
        raise ApiFailure("Filesize received was zero.")
    if up.too_big:
        raise ApiFailure(f"Error on: {c.site}{UPLOAD_HANDLER}. maxFileSize")
    received = names.received_upload_name(up.filename)
    if not received:
        raise ApiFailure(f"Error on: {c.site}{UPLOAD_HANDLER}. Filename not found.")
    folder_id = names.php_int(c.param("folder_id"))
    folder = c.store.folder(c.user.id, folder_id) if folder_id else None  # unowned: root
    target = folder.id if folder else None
    publish_blob(up, c.store.blob_path((up.md5, up.size)))
    with c.store.lock:
        known = c.store.content_known(up.md5, up.size)
        candidate, n = received, 2
        while c.store.name_taken(c.user.id, target, candidate):  # before quote removal (D7)
            candidate, n = names.numbered(received, n), n + 1
        final = names.final_upload_name(candidate)
        f = c.store.add_file(
            c.user.id,
            target,
            final,
            names.keywords(names.to_db(candidate)),
            up.size,
            up.md5,
            c.client_ip,
        )
    if folder is not None and c.store.in_cycle(folder):
        # D9: the real uploader walks the parent chain until PHP runs out of memory, after
        # the file row was written.
        fatal = PHP_FATAL.format(msg="Allowed memory size of 536870912 bytes exhausted")
        raise ApiFailure(
            f"Failed reading response from: {c.site}{UPLOAD_HANDLER}. Response: {fatal}"
        )
    view = views.upload_view(f, final, c.site, known=known, hash_always=c.options.hash_always)
    return success({"response": "File uploaded", "data": [view]})


def file_download(c: Call) -> Reply:
    f = c.file()
    token = c.store.new_download_token(f)
    url = f"{c.site}{f.short}/{names.url_name(f.name)}?download_token={token}"
    return success(
        {"data": {"file_id": c.param("file_id"), "filename": f.name, "download_url": url}}
    )


def file_info(c: Call) -> Reply:
    return success({"data": views.file_info_view(c.file(), c.site)})


def file_edit(c: Call) -> Reply:
    f = c.file()
    changes: dict[str, Any] = {}
    if name := c.param("filename"):
        stored = names.to_db(name)
        changes.update(name=stored, extension=names.extension(stored))
    if file_type := c.param("fileType"):
        changes["file_type"] = file_type
    if target := c.param("folder_id"):
        if target.lower() == "null":
            changes["folder_id"] = None
        elif (d := c.store.folder(c.user.id, names.php_int(target))) is not None:
            changes["folder_id"] = d.id  # unknown or foreign folders are silently ignored
    c.store.update_file(f, **changes)
    return success(
        {"response": "File successfully updated.", "data": views.file_info_view(f, c.site)}
    )


def file_delete(c: Call) -> Reply:
    f = c.store.update_file(c.file(), status="trash", folder_id=None)
    return success(
        {"response": "File successfully set as deleted.", "data": views.file_info_view(f, c.site)}
    )


def file_move(c: Call) -> Reply:
    f = c.file()
    dest = c.required("new_parent_folder_id")
    if dest.lower() == "null":
        target = 0  # 4.x writes '' here: the file then shows in no listing (observed 8b/8c)
    else:
        d = c.store.folder(c.user.id, names.php_int(dest))
        if d is None or d.status != ACTIVE:
            raise ApiFailure(MSG_NO_DEST)
        target = d.id
    c.store.update_file(f, folder_id=target)
    return success(
        {"response": "File successfully moved.", "data": views.file_info_view(f, c.site)}
    )


def file_copy(c: Call) -> Reply:
    c.required("file_id")
    c.required("copy_to_folder_id")
    raise ApiFailure(MSG_NO_FILE)  # what a cookie-less API client gets from 4.x (D8)
