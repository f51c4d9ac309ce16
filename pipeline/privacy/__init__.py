"""Per-user envelope encryption (docs/privacy.md).

- `keyring_for(conn)`: the data keys of the warehouse ``conn`` is connected to (key store + master key).
- `destroy_user_key(conn, user_id) -> bool`: crypto-shredding, idempotent.
- `fields.seal` / `fields.open_sealed`: one value (profile fields, device names); `chunks.seal_column` /
  `chunks.open_refs`: many texts at once (samples' metadata, quarantined payloads); `reads`: decrypted reads of
  those two.
- Decrypted reads of the rest go through their owners: `pipeline.profiles.get_profile`,
  `pipeline.accounts.get_user`, `list_devices`, `get_device`.
"""

from pipeline.privacy.keyring import UNATTRIBUTED, KeyDestroyedError, Keyring, destroy_user_key, keyring_for
from pipeline.privacy.master import MasterKeyError

__all__ = ["UNATTRIBUTED", "KeyDestroyedError", "Keyring", "MasterKeyError", "destroy_user_key", "keyring_for"]
