"""Finish or undo the remote operations a previous process left in flight.

Runs at the start of every pass that finds intents for its pair (so a clean state costs
no request). Each step is idempotent, so a crash during recovery is recovered the same
way by the next pass. The rules themselves are written down in ``syncd.uploader``.
"""

from __future__ import annotations

import structlog

from syncd.remote.base import Remote
from syncd.state import StateStore
from syncd.uploader import finish_replace, trash_orphans

log = structlog.get_logger("syncd.recovery")


def recover_intents(state: StateStore, remote: Remote, pair: str) -> int:
    """Settle every leftover intent of ``pair``; returns how many were settled."""
    settled = 0
    for intent in state.intents(pair):
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
        else:
            log.warning("dropped unknown intent", pair=pair, path=intent.path, error=intent.kind)
            state.remove_intent(intent.id)
        settled += 1
    return settled
