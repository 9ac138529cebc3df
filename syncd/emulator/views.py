"""The JSON objects a 4.x site returns, field for field as in the observed transcript.

Database values are strings, computed counts are ints, NULL is null; key order follows
the real answers so that a diff against API-observed.md stays readable.
"""

from __future__ import annotations

from typing import Any

from syncd.emulator import names
from syncd.emulator.options import EmulatorOptions
from syncd.emulator.records import File, Folder, User
from syncd.emulator.store import Store

SITE_NAME = "syncd emulator"
JsonObj = dict[str, Any]


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)


def folder_view(store: Store, d: Folder, site: str, *, with_password: bool) -> JsonObj:
    children, file_count = store.folder_counts(d)
    out: JsonObj = {
        "id": str(d.id),
        "parentId": _sid(d.parent_id),
        "folderName": d.name,
        "totalSize": str(d.total_size),
        "isPublic": str(d.is_public),
    }
    if with_password:
        out["accessPassword"] = d.access_password
    out.update(
        {
            "date_added": d.date_added,
            "date_updated": d.date_updated,
            "url_folder": f"{site}folder/{d.id}/{names.url_name(d.name)}",
            "total_downloads": 0,
            "child_folder_count": children,
            "file_count": file_count,
        }
    )
    return out


def file_info_view(f: File, site: str) -> JsonObj:
    """file/info, file/edit, file/move, file/delete: status under ``file_status``."""
    return {
        "id": str(f.id),
        "filename": f.name,
        "shortUrl": f.short,
        "fileType": f.file_type,
        "extension": f.extension,
        "fileSize": str(f.size),
        "uploadedIP": f.uploaded_ip,
        "uploadedDate": f.uploaded_date,
        "file_status": f.status,
        "downloads": str(f.downloads),
        "lastAccessed": f.last_accessed,
        "folderId": _sid(f.folder_id),
        "keywords": f.keywords,
        "isPublic": "1",
        "uploadSource": "api",
        "url_file": f"{site}{f.short}",
        "url_file_info": f"{site}{f.short}~i",
        "url_file_stats": f"{site}{f.short}~s",
        "url_file_delete": f"{site}{f.short}~d?{f.delete_hash}",
    }


def listing_file_view(f: File, site: str) -> JsonObj:
    """folder/listing entries: status under ``status``, no dates, no hash."""
    return {
        "id": str(f.id),
        "filename": f.name,
        "shortUrl": f.short,
        "fileType": f.file_type,
        "extension": f.extension,
        "fileSize": str(f.size),
        "status": f.status,
        "downloads": str(f.downloads),
        "folderId": _sid(f.folder_id),
        "keywords": f.keywords,
        "url_file": f"{site}{f.short}",
    }


def upload_view(f: File, name: str, site: str, *, known: bool, hash_always: bool) -> JsonObj:
    """One element of file/upload's ``data`` list. ``name`` is the name before the
    database mangled it (the answer shows it, later calls show the stored one)."""
    url = f"{site}{f.short}/{names.url_name(name)}"
    short_url = f"{site}{f.short}"
    url_html = (
        f"&lt;a href=&quot;{url}&quot; target=&quot;_blank&quot; title=&quot;View "
        f"image on {SITE_NAME}&quot;&gt;view {name} on {SITE_NAME}&lt;/a&gt;"
    )
    result_html = (
        f'<td class="cancel">   <img src="{site}themes/images/green_tick_small.png" height="16"'
        f' width="16" alt="success"/></td><td class="name">{name}</td><td class="rightArrow">'
        f'<img src="{site}themes/images/blue_right_arrow.png" width="8" height="6" /></td>'
        f'<td class="url urlOff">    <a href="{url}" target="_blank">{url}</a>    '
        f'<div class="fileUrls hidden">{url}</div></td>'
    )
    return {
        "name": name,
        "size": str(f.size) if known else f.size,
        "type": f.file_type,
        "error": None,
        "url": url,
        "delete_url": f"{short_url}~d?{f.delete_hash}",
        "info_url": f"{short_url}~i?{f.delete_hash}",
        "delete_type": "DELETE",
        "delete_hash": f.delete_hash,
        "hash": f.md5 if known or hash_always else False,
        "stats_url": f"{short_url}~s",
        "short_url": f.short,
        "file_id": str(f.id),
        "unique_hash": f.unique_hash,
        "url_html": url_html,
        "url_bbcode": f"[url]{url}[/url]",
        "success_result_html": result_html,
    }


def account_view(user: User) -> JsonObj:
    return {
        "id": str(user.id),
        "username": user.username,
        "level_id": "1",
        "email": user.email,
        "lastlogindate": user.datecreated,
        "lastloginip": "127.0.0.1",
        "status": "active",
        "title": "Mr",
        "firstname": "Sync",
        "lastname": "User",
        "languageId": None,
        "datecreated": user.datecreated,
        "lastPayment": None,
        "paidExpiryDate": None,
        "storageLimitOverride": None,
    }


def package_view(opts: EmulatorOptions) -> JsonObj:
    zero = "0"
    return {
        "id": "1",
        "label": opts.package_label,
        "max_upload_size": str(opts.max_upload_size),
        "can_upload": "1",
        "wait_between_downloads": zero,
        "download_speed": zero,
        "max_storage_bytes": zero,
        "show_site_adverts": zero,
        "show_upgrade_screen": zero,
        "days_to_keep_inactive_files": zero,
        "concurrent_uploads": str(opts.concurrent_uploads),
        "concurrent_downloads": zero,
        "downloads_per_24_hours": zero,
        "max_download_filesize_allowed": zero,
        "max_remote_download_urls": zero,
        "level_type": "free",
        "on_upgrade_page": zero,
    }


def tree(store: Store) -> dict[str, list[JsonObj]]:
    """Everything stored (``GET /_emulator/tree``), for tests: folders and files with
    their status, and their path from the root (None if unreachable: lost or in a cycle)."""
    with store.lock:
        folders = [
            {
                "id": str(d.id),
                "parent_id": _sid(d.parent_id),
                "name": d.name,
                "status": d.status,
                "account_id": str(d.user_id),
                "path": _folder_path(store, d.id),
            }
            for d in sorted(store.folders.values(), key=lambda d: d.id)
        ]
        files = []
        for f in sorted(store.files.values(), key=lambda f: f.id):
            parent = _folder_path(store, f.folder_id) if f.folder_id else ""
            path = None if parent is None or f.folder_id == 0 else f"{parent}/{f.name}".lstrip("/")
            files.append(
                {
                    "id": str(f.id),
                    "name": f.name,
                    "folder_id": _sid(f.folder_id),
                    "size": f.size,
                    "md5": f.md5,
                    "status": f.status,
                    "account_id": str(f.user_id),
                    "path": path,
                }
            )
        return {"folders": folders, "files": files}


def _folder_path(store: Store, folder_id: int | None) -> str | None:
    parts: list[str] = []
    seen: set[int] = set()
    while folder_id is not None:
        d = store.folders.get(folder_id)
        if d is None or folder_id in seen:
            return None  # a dangling parent or a cycle
        seen.add(folder_id)
        parts.append(d.name)
        folder_id = d.parent_id
    return "/".join(reversed(parts))
