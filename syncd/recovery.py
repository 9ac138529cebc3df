"""Finish or undo the remote operations a previous process left in flight.

Runs at the start of every pass that finds intents for its pair (so a clean state costs
no request). Each step is idempotent, so a crash during recovery is recovered the same
way by the next pass. The rules themselves are written down in ``syncd.uploader``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.errors import ApiError
from syncd.log import get_logger
from syncd.model import Intent
from syncd.remote_tree import finish_folder_trash, finish_mkdir
from syncd.state import StateStore
from syncd.uploader import finish_replace, finish_trash, trash_orphans

if TYPE_CHECKING:  # for annotations only: no import at start
    from syncd.remote.base import Remote

log = get_logger("syncd.recovery")


def recover_intents(state: StateStore, remote: Remote, pair: str) -> int:
    """Settle every leftover intent of ``pair``; returns how many were settled."""
    settled = 0
    for intent in state.intents(pair):
        assert intent.id is not None
        try:
            _settle(state, remote, pair, intent)
        except ApiError as exc:
            # Permanent for this intent (e.g. its folder is gone from the server): there is
            # nothing left to clean there, and an intent that fails on every pass would
            # stop every later pass of the pair.
            log.warning("intent dropped", pair=pair, path=intent.path, error=str(exc))
            state.remove_intent(intent.id)
        settled += 1
    return settled


def _settle(state: StateStore, remote: Remote, pair: str, intent: Intent) -> None:
    assert intent.id is not None
    if intent.kind == "upload" and intent.folder_id is not None and intent.name:
        trashed = trash_orphans(state, remote, pair, intent.folder_id, intent.name, intent.size)
        log.info("recovered upload", pair=pair, path=intent.path, trashed=trashed)
        state.remove_intent(intent.id)
    elif intent.kind == "replace" and intent.file_id and intent.name:
        record = state.file(pair, intent.path)
        current = intent.name
        if record is not None and record.file_id == intent.file_id and record.remote_name:
            current = record.remote_name
        finish_replace(
            state,
            remote,
            pair,
            intent.id,
            intent.path,
            intent.file_id,
            intent.old_file_id,
            current,
            intent.name,
        )
        log.info("recovered replace", pair=pair, path=intent.path, file_id=intent.file_id)
    elif intent.kind == "trash" and intent.file_id:
        finish_trash(state, remote, intent.id, intent.file_id)
        log.info("recovered trash", pair=pair, path=intent.path, file_id=intent.file_id)
    elif intent.kind == "mkdir" and intent.folder_id is not None and intent.name:
        finish_mkdir(state, remote, intent)
        log.info("recovered mkdir", pair=pair, path=intent.path)
    elif intent.kind == "trash_folder" and intent.folder_id:
        finish_folder_trash(state, remote, intent.id, intent.folder_id)
        log.info("recovered trash", pair=pair, path=intent.path, file_id=intent.folder_id)
    else:
        log.warning("dropped unknown intent", pair=pair, path=intent.path, error=intent.kind)
        state.remove_intent(intent.id)
