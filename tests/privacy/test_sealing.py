"""The pieces: values and chunks sealed with a data key open only in their place, bulk sealing keeps each row's text
at its slot, and the master key is made, found, refused and rotated as docs/privacy.md says."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy.engine import URL

from pipeline.accounts import get_user
from pipeline.cli import main
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.settings import Settings
from pipeline.privacy import UNATTRIBUTED, keyring_for
from pipeline.privacy.chunks import SealedChunk, SealedChunkError, open_texts, seal_column, seal_texts
from pipeline.privacy.fields import SealedValueError, open_sealed, seal
from pipeline.privacy.keyring import Keyring, load_master_key
from pipeline.privacy.keystore import KeyStore, derived_location
from pipeline.privacy.master import MasterKeyError, generate, pending_path, read_file, write_file

KEY = secrets.token_bytes(32)


def test_a_sealed_value_opens_only_for_its_place_and_user() -> None:
    sealed = seal(KEY, "app.users.given_name", "anna", "Zoë")
    assert sealed is not None and b"Zo" not in sealed and len(sealed) == 1 + 12 + len("Zoë".encode()) + 16
    assert open_sealed(KEY, "app.users.given_name", "anna", sealed) == "Zoë"
    assert seal(KEY, "app.users.given_name", "anna", None) is None
    assert seal(KEY, "app.users.given_name", "anna", "Zoë") != sealed  # a new nonce every time
    for place, user, key in (
        ("app.users.family_name", "anna", KEY),  # moved to another column
        ("app.users.given_name", "ben", KEY),  # to another user
        ("app.users.given_name", "anna", secrets.token_bytes(32)),  # another key
    ):
        with pytest.raises(SealedValueError):
            open_sealed(key, place, user, sealed)


def test_a_column_is_sealed_a_chunk_per_user_and_every_row_finds_its_text() -> None:
    users = pa.array(["anna", "ben", "anna", None, "anna", "ben"])
    texts = pa.array(['{"a": 1}', None, '{"é": "ü"}', '{"line": "x"}', "", '{"b": 2}'])

    class FixedKeys(Keyring):
        def __init__(self) -> None:
            self.keys: dict[str, bytes] = {}

        def data_key(self, subject: str) -> bytes:
            return self.keys.setdefault(subject, secrets.token_bytes(32))

    keys = FixedKeys()
    column = seal_column(keys, users, texts)
    assert len(column.chunks) == 3 and set(keys.keys) == {"anna", "ben", UNATTRIBUTED}
    assert column.slots.tolist() == [0, -1, 1, 0, 2, 0]
    by_id = {str(chunk.chunk_id): chunk for chunk in column.chunks}
    opened = [
        None if chunk_id is None else open_texts(keys.keys[by_id[chunk_id].user_id or UNATTRIBUTED], by_id[chunk_id])
        for chunk_id in column.chunk_ids.to_pylist()
    ]
    assert [None if o is None else o[int(s)].as_py() for o, s in zip(opened, column.slots, strict=True)] == [
        '{"a": 1}',
        None,
        '{"é": "ü"}',
        '{"line": "x"}',
        "",
        '{"b": 2}',
    ]
    anna = next(chunk for chunk in column.chunks if chunk.user_id == "anna")
    with pytest.raises(SealedChunkError):  # a chunk claiming another id (or another user) does not open
        open_texts(keys.keys["anna"], SealedChunk(uuid.uuid4(), "anna", anna.sealed))
    with pytest.raises(SealedChunkError):
        open_texts(keys.keys["ben"], SealedChunk(anna.chunk_id, "ben", anna.sealed))


def test_a_sliced_arrow_array_seals_the_slice_only() -> None:
    texts = pa.array([f"text {i}" for i in range(10)]).slice(3, 4)
    chunk = seal_texts(KEY, "anna", texts)
    assert open_texts(KEY, chunk).to_pylist() == ["text 3", "text 4", "text 5", "text 6"]
    assert np.frombuffer(chunk.sealed[:1], np.uint8)[0] == 1


@pytest.fixture
def store(warehouse_url: URL) -> KeyStore:
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        location = derived_location(conn)
    engine.dispose()
    return KeyStore(location)


def test_the_key_file_is_made_only_while_the_store_is_empty(
    store: KeyStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEALTHPIPE_MASTER_KEY", raising=False)
    settings = Settings(home=tmp_path)
    made = load_master_key(settings, store)
    assert read_file(tmp_path / "master.key").key_id == made.key_id
    Keyring(store, made).data_key("anna")
    (tmp_path / "master.key").unlink()
    with pytest.raises(MasterKeyError, match=f"no master key at .*wrapped by {made.key_id.hex()}"):
        load_master_key(settings, store)
    write_file(tmp_path / "master.key", made)
    assert load_master_key(settings, store).key_id == made.key_id
    store.close()


def test_a_rotation_interrupted_after_the_store_switched_is_finished_on_the_next_start(
    store: KeyStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEALTHPIPE_MASTER_KEY", raising=False)
    settings = Settings(home=tmp_path)
    old = load_master_key(settings, store)
    keyring = Keyring(store, old)
    data_key = keyring.data_key("anna")
    new = generate("new")
    write_file(pending_path(tmp_path / "master.key"), new)
    assert load_master_key(settings, store).key_id == old.key_id  # the store has not switched: the pending key goes
    assert not pending_path(tmp_path / "master.key").exists()
    write_file(pending_path(tmp_path / "master.key"), new)
    keyring.rotate_master(new)  # ... and the process dies before replacing the file
    assert load_master_key(settings, store).key_id == new.key_id
    assert read_file(tmp_path / "master.key").key_id == new.key_id
    assert Keyring(store, new).existing_key("anna") == data_key
    store.close()


def test_keys_rotate_master_from_the_command_line(
    warehouse_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HEALTHPIPE_MASTER_KEY", raising=False)
    monkeypatch.setenv("HEALTHPIPE_HOME", str(tmp_path))
    assert main(["users", "add", "anna", "--name", "Anna Vellacott"]) == 0
    before = read_file(tmp_path / "master.key")
    capsys.readouterr()
    assert main(["keys", "rotate-master"]) == 0
    after = read_file(tmp_path / "master.key")
    assert capsys.readouterr().out == (
        f"re-wrapped 1 data keys: master key {before.key_id.hex()} -> {after.key_id.hex()}, now in "
        f"{tmp_path / 'master.key'}\n"
    )
    engine = create_warehouse_engine(warehouse_url)
    with psycopg_connection(engine) as conn:
        user = get_user(conn, "anna")
        assert keyring_for(conn).master.key_id == after.key_id
    engine.dispose()
    assert user is not None and user.display_name == "Anna Vellacott"
