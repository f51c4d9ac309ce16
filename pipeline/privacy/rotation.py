"""Master key rotation: a new master key re-wraps every data key (one transaction in the key store); no data is
re-encrypted. The new key reaches its file so that a crash at any point leaves a key that opens the store:
written to ``<file>.new`` first, the store switched, then the file replaced (`load_master_key` finishes a rotation
interrupted between the last two steps)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.infra.database import Connection
from pipeline.infra.settings import Settings
from pipeline.privacy import master
from pipeline.privacy.keyring import keyring_for
from pipeline.privacy.master import MasterKeyError


@dataclass(frozen=True)
class Rotation:
    keys: int  # data keys re-wrapped
    key_file: Path  # where the new master key is
    old_id: str
    new_id: str


def rotate_master_key(conn: Connection, settings: Settings, new_key_file: Path | None = None) -> Rotation:
    """Re-wrap every data key of the warehouse ``conn`` belongs to under a new master key, written to the key file
    (or ``new_key_file``; required when the master key comes from ``HEALTHPIPE_MASTER_KEY``)."""
    keys = keyring_for(conn, settings)
    old = keys.master
    path = settings.resolved_master_key_file
    if settings.master_key is not None and new_key_file is None:
        raise MasterKeyError(
            "the master key comes from HEALTHPIPE_MASTER_KEY: pass --new-key-file PATH, then set "
            "HEALTHPIPE_MASTER_KEY_FILE=PATH and unset HEALTHPIPE_MASTER_KEY"
        )
    target = (new_key_file or path).resolve()
    if target == path:
        pending = master.pending_path(path)
        pending.unlink(missing_ok=True)  # a rotation that never reached the store (load_master_key judged it)
        new = master.generate(str(path))
        master.write_file(pending, new)
        count = keys.rotate_master(new)
        try:
            os.replace(pending, path)
        except FileNotFoundError:  # another process, loading the key meanwhile, finished the rotation
            if master.read_file(path).key_id != new.key_id:
                raise
    else:
        new = master.generate(str(target))
        master.write_file(target, new)
        count = keys.rotate_master(new)
    return Rotation(count, target, old.key_id.hex(), new.key_id.hex())
