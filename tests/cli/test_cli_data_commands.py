"""The data commands of ``healthpipe`` on a database they have never seen, and on one they cannot reach."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline import cli
from pipeline.infra.database import libpq_url
from pipeline.infra.migrations import current_version, discover_migrations
from pipeline.synthetic.generator import SyntheticConfig, generate, generate_chunks
from tests.support.helpers import APPLE_HEADER, apple_record


def test_generate_on_a_fresh_database_migrates_it_and_lands_every_sample(
    make_database: Callable[[], URL], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_database()  # empty: no schema at all
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))

    code = cli.main(["generate", "--users", "2", "--days", "3", "--seed", "11", "--start", "2024-05-06"])

    expected = generate(SyntheticConfig(users=2, days=3, start=dt.date(2024, 5, 6), seed=11))
    assert code == 0
    assert current_version(url) == discover_migrations()[-1].version
    with psycopg.connect(libpq_url(url)) as conn:
        read, landed, duplicates, rejected = conn.execute(
            "SELECT sum(read_count), sum(landed_count), sum(duplicate_count), sum(rejected_count) "
            "FROM app.ingest_batches WHERE status = 'done'"
        ).fetchone()  # type: ignore[misc]
        raw_rows = conn.execute("SELECT count(*) FROM raw.samples").fetchone()[0]  # type: ignore[index]
        quarantined = conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0]  # type: ignore[index]
    assert read == len(expected.samples)
    assert read == landed + duplicates + rejected
    assert (raw_rows, quarantined) == (landed, rejected)
    assert duplicates > 0 and rejected > 0  # the generator's retries and malformed rows


def test_generate_in_chunks_of_users_lands_and_writes_the_truth_of_every_user(
    make_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = make_database()
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))
    truth_csv = tmp_path / "truth.csv"
    args = ["generate", "--users", "3", "--days", "2", "--seed", "11", "--start", "2024-05-06", "--truth"]

    code = cli.main([*args, str(truth_csv), "--users-per-chunk", "2"])

    expected_config = SyntheticConfig(users=3, days=2, start=dt.date(2024, 5, 6), seed=11)
    expected = generate(expected_config)
    assert code == 0
    truth = pd.read_csv(truth_csv, parse_dates=["local_date"])
    truth["local_date"] = truth["local_date"].dt.date
    pd.testing.assert_frame_equal(truth, expected.truth, check_dtype=False)  # one header, every user once
    with psycopg.connect(libpq_url(url)) as conn:
        read, users, batches = conn.execute(
            "SELECT sum(read_count), count(DISTINCT substring(source_ref from ' of (.*)$')), count(*) "
            "FROM app.ingest_batches"
        ).fetchone()  # type: ignore[misc]
        landed = conn.execute("SELECT count(*) FROM raw.samples").fetchone()[0]  # type: ignore[index]
    assert read == len(expected.samples)  # the chunks are the whole dataset
    assert users == 2  # batches of the chunk u0001..u0002, then of u0003
    chunk_days = [chunk.samples["arrival_day"].nunique() for chunk in generate_chunks(expected_config, 2)]
    assert batches == sum(chunk_days)  # each chunk's arrival days in batches of their own
    out = capsys.readouterr().out
    assert f"{len(expected.samples):,} samples: landed {landed:,}" in out and f"in {batches} arrival batches" in out


@pytest.mark.parametrize("bad", [["--users", "0"], ["--days", "-2"], ["--users-per-chunk", "x"]])
def test_generate_refuses_sizes_below_one_before_touching_the_database(
    bad: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", "postgresql://someone@127.0.0.1:1/nowhere")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["generate", *bad])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"argument {bad[0]}" in err and "Traceback" not in err


def test_an_unreachable_database_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere")

    code = cli.main(["keys", "list"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("healthpipe: database error: ") and err.count("\n") == 1
    assert "s3cret-pw" not in err
    assert "Traceback" not in err


def _batches(url: URL) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(
            "SELECT status, read_count, landed_count, duplicate_count, rejected_count, skipped_count "
            "FROM app.ingest_batches ORDER BY batch_id"
        ).fetchall()


def _last_error_line(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """(stdout, the last line on stderr: the one-line verdict after any progress bar)."""
    out, err = capsys.readouterr()
    return out, err.rstrip("\n").rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]


_CSV_HEADER = "type,value,unit,startDate,endDate,sourceDevice\n"
_CSV_ROW = "STEPS,{value},count,2024-01-01T10:0{minute}:00Z,2024-01-01T10:0{minute}:30Z,iPhone\n"


def test_imports_that_do_not_say_whose_data_it_is_are_refused_before_reading(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 and no ingest batch: an Apple export (never names a user), a CSV without a user column, an NDJSON
    file whose first record has no userId."""
    export = tmp_path / "export.xml"
    export.write_text(APPLE_HEADER + "</HealthData>\n")
    table = tmp_path / "steps.csv"
    table.write_text(_CSV_HEADER + _CSV_ROW.format(value=100, minute=0))
    lines = tmp_path / "steps.ndjson"
    lines.write_text(json.dumps({"type": "STEPS", "value": 1}) + "\n" + json.dumps({"userId": "anna"}) + "\n")

    verdicts = []
    for path in (export, table, lines):
        code = cli.main(["import", str(path)])
        verdicts.append((code, _last_error_line(capsys)[1]))

    assert verdicts == [
        (2, "healthpipe: error: an Apple Health export belongs to one person: pass --user"),
        (2, "healthpipe: error: steps.csv has no user column (userId or user_id): pass --user"),
        (2, "healthpipe: error: the first record of steps.ndjson has no userId: pass --user"),
    ]
    assert _batches(warehouse_url) == []


def test_an_ndjson_file_naming_its_user_first_lands_and_rejects_rows_without_one(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["users", "add", "anna"]) == 0
    sample = {"type": "STEPS", "value": 100, "unit": "count", "sourceDevice": "iPhone"}
    rows = [
        sample | {"userId": "anna", "startDate": "2024-01-01T10:00:00Z", "endDate": "2024-01-01T10:01:00Z"},
        sample | {"startDate": "2024-01-01T11:00:00Z", "endDate": "2024-01-01T11:01:00Z"},
    ]
    path = tmp_path / "steps.ndjson"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    code = cli.main(["import", str(path)])

    out, _ = _last_error_line(capsys)
    assert code == 0
    assert "landed 1, duplicates 0, rejected 1" in out
    assert _batches(warehouse_url) == [("done", 2, 1, 0, 1, 0)]


def test_a_text_file_renamed_csv_or_ndjson_exits_1_with_a_one_line_summary(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = "shopping list\nmilk\neggs\n"
    (tmp_path / "notes.csv").write_text(notes)
    (tmp_path / "notes.ndjson").write_text(notes)

    verdicts = []
    for name in ("notes.csv", "notes.ndjson"):
        code = cli.main(["import", str(tmp_path / name), "--user", "anna", "--create-user"])
        verdicts.append((code, _last_error_line(capsys)[1]))

    # the CSV's first line is its header: 2 rows; the NDJSON file: 3 lines that are not JSON
    assert verdicts == [
        (
            1,
            'healthpipe: notes.csv yielded no sample: 2 records read, all 2 rejected for "missing metric type; value '
            'is not a number; unparseable start date; unparseable end date" (raw.quarantine, batch 1)',
        ),
        (
            1,
            'healthpipe: notes.ndjson yielded no sample: 3 records read, all 3 rejected for "malformed JSON line" '
            "(raw.quarantine, batch 2)",
        ),
    ]
    assert _batches(warehouse_url) == [("done", 2, 0, 0, 2, 0), ("done", 3, 0, 0, 3, 0)]


def test_a_reimport_of_landed_data_succeeds_and_a_directory_is_a_directory(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "steps.csv"
    path.write_text(_CSV_HEADER + _CSV_ROW.format(value=100, minute=0) + _CSV_ROW.format(value=200, minute=1))
    unzipped = tmp_path / "apple_health_export"
    unzipped.mkdir()
    (unzipped / "export.xml").write_text(APPLE_HEADER + "</HealthData>\n")

    first = cli.main(["import", str(path), "--user", "anna", "--create-user"])
    again = cli.main(["import", str(path), "--user", "anna"])
    capsys.readouterr()
    folder = cli.main(["import", str(unzipped), "--user", "anna"])
    _, verdict = _last_error_line(capsys)

    assert (first, again, folder) == (0, 0, 2)
    assert verdict == (
        f"healthpipe: error: {unzipped} is a directory, not a file; import the export.xml inside it or the .zip"
    )
    assert _batches(warehouse_url) == [("done", 2, 2, 0, 0, 0), ("done", 2, 0, 2, 0, 0)]


def test_a_damaged_export_exits_1_with_the_fault_and_counts_that_add_up(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = apple_record(
        "HKQuantityTypeIdentifierStepCount", "100", "count", "2024-03-01 10:00:00 +0000", "2024-03-01 10:01:00 +0000"
    )
    skipped = apple_record(
        "HKQuantityTypeIdentifierFlightsClimbed", "3", "count", "2024-03-01 11:00:00 +0000", "2024-03-01 11:01:00 +0000"
    )
    path = tmp_path / "export.xml"
    document = APPLE_HEADER + record + skipped + " </Correlation>\n" + record + "</HealthData>\n"
    path.write_text(document)
    byte = document.index("</Correlation>")

    code = cli.main(["import", str(path), "--user", "anna", "--create-user"])

    out, verdict = _last_error_line(capsys)
    assert code == 1
    assert verdict == (
        f"healthpipe: error: export.xml is damaged at line 12 (byte {byte}): a stray </Correlation> (no "
        "<Correlation> is open); the 2 records before it were read, nothing after it"
    )
    assert "read 2 records" in out and "landed 1, duplicates 0, rejected 0 (see raw.quarantine), skipped types 1" in out
    assert _batches(warehouse_url) == [("failed", 2, 1, 0, 0, 1)]


def test_an_export_of_types_outside_the_catalogue_only_exits_1(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    height = apple_record(
        "HKQuantityTypeIdentifierHeight", "168", "cm", "2024-03-01 10:00:00 +0000", "2024-03-01 10:00:00 +0000"
    )
    path = tmp_path / "export.xml"
    path.write_text(APPLE_HEADER + height + height.replace("168", "169") + "</HealthData>\n")

    code = cli.main(["import", str(path), "--user", "anna", "--create-user"])

    assert (code, _last_error_line(capsys)[1]) == (
        1,
        "healthpipe: export.xml yielded no sample: 2 records read, 2 of types outside the catalogue",
    )
    assert _batches(warehouse_url) == [("done", 2, 0, 0, 0, 2)]


def test_empty_files_exit_1_alike_and_a_device_is_refused_before_reading(
    warehouse_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty NDJSON or CSV file (or only blank lines) is 'no sample at all'; /dev/zero never ends: exit 2 at
    once, no batch."""
    (tmp_path / "empty.ndjson").write_text("")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "blank.csv").write_text("\n\n")
    (tmp_path / "blank.ndjson").write_text(" \n\n")

    verdicts = []
    for name in ("empty.ndjson", "empty.csv", "blank.csv", "blank.ndjson"):
        code = cli.main(["import", str(tmp_path / name), "--user", "anna", "--create-user"])
        verdicts.append((code, _last_error_line(capsys)[1]))
    device = cli.main(["import", "/dev/zero", "--format", "apple", "--user", "anna"])
    verdicts.append((device, _last_error_line(capsys)[1]))

    assert verdicts == [
        *[(1, f"healthpipe: {name} yielded no sample: it holds no records") for name in ("empty.ndjson", "empty.csv")],
        *[(1, f"healthpipe: {name} yielded no sample: it holds no records") for name in ("blank.csv", "blank.ndjson")],
        (
            2,
            "healthpipe: error: /dev/zero is not a regular file (a device, pipe or socket): save it to a file and "
            "import that",
        ),
    ]
    assert _batches(warehouse_url) == [("done", 0, 0, 0, 0, 0)] * 4


def test_users_list_names_every_user_with_what_is_held_of_theirs(
    make_database: Callable[[], URL], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_database()
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))
    assert cli.main(["users", "list"]) == 0
    assert "no users yet" in capsys.readouterr().err
    assert cli.main(["generate", "--users", "2", "--days", "3", "--seed", "11", "--start", "2024-05-06"]) == 0
    assert cli.main(["users", "add", "zoe", "--timezone", "Asia/Tokyo"]) == 0
    capsys.readouterr()
    assert cli.main(["users", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    with psycopg.connect(libpq_url(url)) as conn:
        landed = dict(conn.execute("SELECT user_id, count(*) FROM raw.samples GROUP BY 1").fetchall())
    assert [line.split()[0] for line in lines[1:]] == ["u0001", "u0002", "zoe"]
    first = lines[1].split()
    assert first[2] == f"{landed['u0001']:,}" and first[3] == "none"  # landed, not computed yet
    assert lines[3].split()[1:4] == ["Asia/Tokyo", "0", "none"]
