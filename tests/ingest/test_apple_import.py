"""The Apple Health importer on the real fixture files and on constructed broken exports."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from sqlalchemy import Engine, text

from pipeline.infra.database import psycopg_connection
from pipeline.ingest import apple_archive
from pipeline.ingest.apple_health import AppleExportError, read_export
from pipeline.ingest.importer import IncompleteImportError, import_file
from pipeline.privacy import reads
from tests.conftest import FIXTURES
from tests.support.helpers import APPLE_HEADER, apple_record, landed, new_user

APPLE = FIXTURES / "apple_health"
needs_fixtures = pytest.mark.skipif(not APPLE.exists(), reason="../shared/fixtures is not beside the checkout")


@needs_fixtures
def test_tdda_steps_give_2517_on_the_day_with_1309_and_1208_by_hour(engine: Engine) -> None:
    user = new_user(engine, "Europe/London")  # the export was made at +0100: London summer time
    report = import_file(engine, APPLE / "applehealthdata_export6s3sample.xml", user)
    assert (report.counts.read, report.counts.landed, report.counts.rejected) == (15, 15, 0)
    assert report.other_elements == {"ActivitySummary": 2, "Workout": 1}

    samples = landed(engine, user)
    steps = samples[samples["metric"] == "STEPS"]
    on_day = steps[steps["local_start"].dt.date == pd.Timestamp("2014-09-13").date()]
    assert on_day["canonical"].sum() == 2517
    assert on_day.groupby(on_day["local_start"].dt.hour)["canonical"].sum().to_dict() == {10: 1309, 11: 1208}
    distance = samples[(samples["metric"] == "DISTANCE")]
    assert distance["canonical"].sum() == pytest.approx(19.43)
    assert set(distance["local_start"].dt.date.astype(str)) == {"2014-09-20"}
    assert set(steps["device_class"]) == {"phone"}


@needs_fixtures
def test_the_no_break_space_in_apple_watch_is_kept(engine: Engine) -> None:
    user = new_user(engine, "America/Los_Angeles")
    import_file(engine, APPLE / "healthkit-to-sqlite_export.xml", user)
    samples = landed(engine, user)
    assert samples[["metric", "value", "source_name", "device_class"]].values.tolist() == [
        ["HEART_RATE", 72.0, "Apple\u00a0Watch", "watch"]
    ]


@needs_fixtures
def test_the_macos_zip_gives_heart_rates_74_75_on_2024_01_01_and_02_and_reimport_lands_nothing(
    engine: Engine,
) -> None:
    user = new_user(engine, "Europe/Amsterdam")
    first = import_file(engine, APPLE / "apple-health-parser_export.zip", user)
    assert (first.counts.landed, first.counts.skipped, first.counts.duplicates) == (6, 2, 0)
    samples = landed(engine, user)
    assert samples.loc[samples["metric"] == "HEART_RATE", "value"].tolist() == [74.0, 75.0]
    energy = samples.loc[samples["metric"] == "ACTIVE_ENERGY", "canonical"]
    assert energy.sum() == pytest.approx(0.20)
    readings = samples[samples["metric"].isin(["HEART_RATE", "ACTIVE_ENERGY"])]
    assert set(readings["local_start"].dt.date.astype(str)) == {"2024-01-01", "2024-01-02"}
    # Every date in the file is written at +0200, the phone's offset at export time (June). Amsterdam is at +0100
    # in January, so the in-bed record written "2024-01-01 00:55:28 +0200" began at 23:55:28 on 31 December.
    in_bed = samples[samples["stage"] == "in_bed"]
    assert in_bed["local_start"].astype(str).tolist() == ["2023-12-31 23:55:28"]
    sleep = samples[samples["metric"] == "SLEEP_ANALYSIS"]
    assert sleep[["stage", "timezone", "device_class"]].values.tolist() == [
        ["in_bed", "Europe/Amsterdam", "phone"],
        ["core", "Europe/Amsterdam", "watch"],
    ]
    assert sleep["value"].tolist() == pytest.approx([85 / 60, 12.5])  # minutes of each interval

    again = import_file(engine, APPLE / "apple-health-parser_export.zip", user)
    assert (again.counts.read, again.counts.landed, again.counts.duplicates, again.counts.skipped) == (8, 0, 6, 2)
    assert len(landed(engine, user)) == 6
    # the same records from the bare XML are the same samples
    assert import_file(engine, APPLE / "apple-health-parser_export.xml", user).counts.landed == 0


@needs_fixtures
def test_65_kg_typed_into_zdorovye_is_a_manual_weight(engine: Engine) -> None:
    user = new_user(engine, "Europe/Moscow")
    report = import_file(engine, APPLE / "applehealth-go_testdata_ru_RU.xml", user)
    assert report.counts.skipped_types == {"HKQuantityTypeIdentifierHeight": 1}
    samples = landed(engine, user)
    assert samples[["metric", "canonical", "source_name", "device_class"]].values.tolist() == [
        ["WEIGHT", 65.0, "Здоровье", "manual"]
    ]
    assert str(samples["local_start"].dt.date.iloc[0]) == "2017-07-25"


def write_broken_export(path: Path) -> None:
    body = "".join(
        [
            apple_record(
                "HKQuantityTypeIdentifierStepCount",
                "120",
                "count",
                "2024-03-01 10:00:00 +0100",
                "2024-03-01 10:05:00 +0100",
            ),
            apple_record(
                "HKQuantityTypeIdentifierStepCount",
                "abc",
                "count",
                "2024-03-01 10:05:00 +0100",
                "2024-03-01 10:10:00 +0100",
            ),
            apple_record(
                "HKQuantityTypeIdentifierStepCount",
                "80",
                "count",
                "2024-03-01 11:00:00 +0100",
                "2024-03-01 10:00:00 +0100",
            ),
            apple_record(
                "HKQuantityTypeIdentifierHeartRate", "60", "count/min", "yesterday", "2024-03-01 10:00:00 +0100"
            ),
            apple_record(
                "HKQuantityTypeIdentifierBodyMass",
                "70",
                "furlong",
                "2024-03-01 07:00:00 +0100",
                "2024-03-01 07:00:00 +0100",
            ),
            apple_record(
                "HKQuantityTypeIdentifierHeartRate",
                "61",
                "count/min",
                "2024-03-01 10:00:00 +0100",
                "2024-03-01 10:00:00 +0100",
                meta={"HKTimeZone": "Mars/Olympus"},
            ),
            apple_record(
                "HKCategoryTypeIdentifierSleepAnalysis",
                "HKCategoryValueSleepAnalysisAsleepDeep",
                None,
                "2024-03-01 01:00:00 +0100",
                "2024-03-01 02:30:00 +0100",
                meta={"HKTimeZone": "Europe/Berlin"},
            ),
            apple_record(
                "HKQuantityTypeIdentifierBloodGlucose",
                "5.5",
                "mmol&lt;180.1558800000541&gt;/L",
                "2024-03-01 08:00:00 +0100",
                "2024-03-01 08:00:00 +0100",
                source="Dexcom G7",
            ),
            apple_record(
                "HKQuantityTypeIdentifierOxygenSaturation",
                "0.97",
                "%",
                "2024-03-01 03:00:00 +0100",
                "2024-03-01 03:00:00 +0100",
                source="Apple Watch",
            ),
            apple_record(
                "HKQuantityTypeIdentifierFlightsClimbed",
                "3",
                "count",
                "2024-03-01 09:00:00 +0100",
                "2024-03-01 09:01:00 +0100",
            ),
            # a blood pressure correlation: its child records repeat top-level ones and are not read twice
            ' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
            'startDate="2024-03-01 09:00:00 +0100" endDate="2024-03-01 09:00:00 +0100">\n  '
            + apple_record(
                "HKQuantityTypeIdentifierHeartRate",
                "66",
                "count/min",
                "2024-03-01 09:00:00 +0100",
                "2024-03-01 09:00:00 +0100",
                source="Omron",
            )
            + " </Correlation>\n",
        ]
    )
    path.write_text(APPLE_HEADER + body + "</HealthData>\n", encoding="utf-8")


def test_a_broken_export_lands_the_good_records_and_quarantines_the_rest_with_reasons(
    engine: Engine, tmp_path: Path
) -> None:
    user = new_user(engine, "Europe/Berlin")
    path = tmp_path / "export.xml"
    write_broken_export(path)
    report = import_file(engine, path, user)
    c = report.counts
    assert (c.read, c.landed, c.rejected, c.skipped, c.duplicates) == (10, 4, 5, 1, 0)
    assert c.read == c.landed + c.duplicates + c.rejected + c.skipped
    assert report.other_elements == {"Correlation": 1}

    with engine.connect() as conn:
        with psycopg_connection(engine) as raw_conn:
            rows = reads.quarantined(raw_conn, batch_id=report.batch_id)
        reasons = [(row.reason, json.loads(row.payload)["value"]) for row in rows]
        batch = conn.execute(
            text(
                "SELECT status, read_count, landed_count, rejected_count, skipped_count, skipped_types "
                "FROM app.ingest_batches WHERE batch_id = :b"
            ),
            {"b": report.batch_id},
        ).one()
    assert sorted(reasons) == sorted(
        [
            ("unparseable start date", "60"),
            ("unknown time zone 'Mars/Olympus'", "61"),
            ("unit 'furlong' not convertible for WEIGHT", "70"),
            ("end before start", "80"),
            ("value is not a number", "abc"),
        ]
    )
    assert tuple(batch) == ("done", 10, 4, 5, 1, {"HKQuantityTypeIdentifierFlightsClimbed": 1})

    samples = landed(engine, user)
    by_metric = samples.set_index("metric")
    assert by_metric.loc["BLOOD_GLUCOSE", "canonical"] == pytest.approx(5.5 * 18.01558800000541)
    assert by_metric.loc["BLOOD_GLUCOSE", "device_class"] == "wearable"
    assert by_metric.loc["OXYGEN_SATURATION", "canonical"] == pytest.approx(97.0)
    assert by_metric.loc["SLEEP_ANALYSIS", ["stage", "value", "unit"]].tolist() == ["deep", 90.0, "min"]
    assert by_metric.loc["STEPS", "canonical"] == 120


def test_a_spanish_zip_with_macos_junk_is_read(tmp_path: Path) -> None:
    xml = (
        APPLE_HEADER
        + apple_record(
            "HKQuantityTypeIdentifierStepCount", "42", "count", "2024-03-01 10:00:00 +0100", "2024-03-01 10:01:00 +0100"
        )
        + "</HealthData>\n"
    )
    archive = tmp_path / "exportar.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("apple_health_export/", "")
        zf.writestr("apple_health_export/.DS_Store", b"\0\0junk")
        zf.writestr("__MACOSX/apple_health_export/._exportar.xml", b"\0\5\26\7 junk")
        zf.writestr("apple_health_export/export_cda.xml", "<ClinicalDocument/>")
        zf.writestr("apple_health_export/exportar.xml", xml)
    chunks = list(read_export(archive, "someone"))
    frame = pd.concat([c for c, _ in chunks])
    assert frame[["metric", "value"]].values.tolist() == [["STEPS", "42"]]


def test_not_an_export_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "export.xml"
    bogus.write_text("this is not xml")
    with pytest.raises(AppleExportError, match="not an Apple Health export: it has no <HealthData> element"):
        list(read_export(bogus, "someone"))


def test_a_truncated_export_lands_what_came_before_the_break_and_says_so(engine: Engine, tmp_path: Path) -> None:
    user = new_user(engine, "UTC")
    whole = APPLE_HEADER + "".join(
        apple_record(
            "HKQuantityTypeIdentifierStepCount",
            str(10 + i),
            "count",
            f"2024-03-01 10:{i:02d}:00 +0000",
            f"2024-03-01 10:{i:02d}:30 +0000",
        )
        for i in range(20)
    )
    path = tmp_path / "export.xml"
    path.write_text(whole[: whole.rindex("<Record") + 60])  # cut inside the last record
    with pytest.raises(IncompleteImportError, match="ends early") as raised:
        import_file(engine, path, user)
    c = raised.value.report.counts
    assert (c.read, c.landed, c.rejected) == (20, 19, 1)
    samples = landed(engine, user)
    assert samples["value"].tolist() == [float(10 + i) for i in range(19)]
    with engine.connect() as conn:
        reasons = (
            conn.execute(
                text(
                    "SELECT q.reason FROM raw.quarantine q JOIN app.ingest_batches b USING (batch_id) "
                    "WHERE b.user_id = :u"
                ),
                {"u": user},
            )
            .scalars()
            .all()
        )
    assert reasons == ["value is not a number; unparseable start date; unparseable end date"]


def test_a_killed_import_is_finished_by_running_it_again(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks commit one by one; a rerun lands exactly what the interrupted run had not."""
    monkeypatch.setattr(apple_archive, "_READ_SIZE", 256 * 1024)  # several pieces from a small file
    user = new_user(engine, "UTC")
    total = 15_000  # about 3 MB: several 1 MiB reads, so progress is reported between landed chunks
    stamps = pd.date_range("2024-03-01", periods=total, freq="s").strftime("%Y-%m-%d %H:%M:%S +0000")
    records = "".join(
        apple_record("HKQuantityTypeIdentifierHeartRate", str(60 + i % 40), "count/min", stamp, stamp)
        for i, stamp in enumerate(stamps)
    )
    path = tmp_path / "export.xml"
    path.write_text(APPLE_HEADER + records + "</HealthData>\n")

    class InterruptedImportError(Exception):
        pass

    def interrupt_after_first_chunk(done: int, total: int) -> None:
        if landed(engine, user).shape[0] > 0:
            raise InterruptedImportError

    with pytest.raises(InterruptedImportError):
        import_file(engine, path, user, chunk_size=1000, on_progress=interrupt_after_first_chunk)
    partial = len(landed(engine, user))
    assert 0 < partial < total
    rerun = import_file(engine, path, user, chunk_size=1000)
    assert (rerun.counts.landed, rerun.counts.duplicates) == (total - partial, partial)
    assert len(landed(engine, user)) == total
    with psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        statuses = [
            r[0]
            for r in conn.execute("SELECT status FROM app.ingest_batches WHERE user_id = %s ORDER BY batch_id", (user,))
        ]
    assert statuses == ["failed", "done"]


def _steps(minute: int, value: int) -> str:
    return apple_record(
        "HKQuantityTypeIdentifierStepCount",
        str(value),
        "count",
        f"2024-03-01 10:{minute:02d}:00 +0000",
        f"2024-03-01 10:{minute:02d}:30 +0000",
    )


_BLOOD_PRESSURE = (
    ' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
    'startDate="2024-03-01 09:00:00 +0000" endDate="2024-03-01 09:00:00 +0000">\n'
)
# APPLE_HEADER takes lines 1-9: the body starts on line 10, one line per record


def _import_damaged(engine: Engine, tmp_path: Path, body: str) -> tuple[str, str, IncompleteImportError, str]:
    """(user, file text, the fault raised, the batch's status) of importing a damaged export."""
    user = new_user(engine, "UTC")
    document = APPLE_HEADER + body + "</HealthData>\n"
    path = tmp_path / "export.xml"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(IncompleteImportError) as raised:
        import_file(engine, path, user)
    fault = raised.value
    c = fault.report.counts
    assert c.read == c.landed + c.duplicates + c.rejected + c.skipped
    with engine.connect() as conn:
        status, read, landed_count, duplicates, rejected, skipped = conn.execute(
            text(
                "SELECT status, read_count, landed_count, duplicate_count, rejected_count, skipped_count "
                "FROM app.ingest_batches WHERE batch_id = :b"
            ),
            {"b": fault.report.batch_id},
        ).one()
    in_table = (read, landed_count, duplicates, rejected, skipped)
    assert in_table == (c.read, c.landed, c.duplicates, c.rejected, c.skipped)
    return user, document, fault, status


def _byte_of(document: str, marker: str) -> int:
    return len(document[: document.index(marker)].encode("utf-8"))


def test_an_orphan_closing_correlation_stops_the_import_there_and_says_on_which_line(
    engine: Engine, tmp_path: Path
) -> None:
    """Lines 10-11 land; line 12 is a </Correlation> nothing opened; the blood pressure after it (whose child
    record would have counted as a top-level record) and line 16 are not read."""
    body = (
        _steps(0, 100)
        + _steps(1, 200)
        + " </Correlation>\n"
        + _BLOOD_PRESSURE
        + _steps(30, 999)
        + " </Correlation>\n"
        + _steps(2, 300)
    )
    user, document, fault, status = _import_damaged(engine, tmp_path, body)
    assert str(fault) == (
        f"export.xml is damaged at line 12 (byte {_byte_of(document, ' </Correlation>') + 1}): "
        "a stray </Correlation> (no <Correlation> is open); the 2 records before it were read, nothing after it"
    )
    c = fault.report.counts
    assert (c.read, c.landed, c.rejected, c.skipped, c.duplicates, status) == (2, 2, 0, 0, 0, "failed")
    assert landed(engine, user)["value"].tolist() == [100.0, 200.0]


def test_an_unclosed_correlation_at_the_end_is_reported_where_it_opened(engine: Engine, tmp_path: Path) -> None:
    body = _steps(0, 100) + _steps(1, 200) + _steps(2, 300) + _BLOOD_PRESSURE + _steps(30, 999)
    user, document, fault, status = _import_damaged(engine, tmp_path, body)
    opened = _byte_of(document, _BLOOD_PRESSURE) + 1
    closed = _byte_of(document, "</HealthData>\n")
    assert str(fault) == (
        f"export.xml is damaged at line 15 (byte {closed}): <Correlation> opened at line 13 (byte {opened}) is not "
        "closed before </HealthData>; the 3 records before it were read, nothing after it"
    )
    c = fault.report.counts
    assert (c.read, c.landed, c.rejected, status) == (3, 3, 0, "failed")
    assert landed(engine, user)["value"].tolist() == [100.0, 200.0, 300.0]


def test_a_stray_closing_record_stops_the_import_there(engine: Engine, tmp_path: Path) -> None:
    body = _steps(0, 100) + " </Record>\n" + _steps(1, 200) + _steps(2, 300)
    user, document, fault, status = _import_damaged(engine, tmp_path, body)
    assert str(fault) == (
        f"export.xml is damaged at line 11 (byte {_byte_of(document, ' </Record>') + 1}): "
        "a stray </Record> (no <Record> is open); the 1 record before it was read, nothing after it"
    )
    c = fault.report.counts
    assert (c.read, c.landed, status) == (1, 1, "failed")
    assert landed(engine, user)["value"].tolist() == [100.0]


def test_a_record_whose_closing_tag_was_cut_out_is_found_at_the_next_record(engine: Engine, tmp_path: Path) -> None:
    """Line 11 opens a record with metadata whose </Record> is missing: line 12's record would sit inside it."""
    with_metadata = apple_record(
        "HKQuantityTypeIdentifierHeartRate",
        "61",
        "count/min",
        "2024-03-01 10:00:00 +0000",
        "2024-03-01 10:00:00 +0000",
        meta={"HKTimeZone": "Europe/Berlin"},
    )
    unclosed = with_metadata.replace("</Record>", "")
    body = _steps(0, 100) + unclosed + _steps(1, 200) + _steps(2, 300)
    user, document, fault, status = _import_damaged(engine, tmp_path, body)
    assert str(fault) == (
        f"export.xml is damaged at line 12 (byte {_byte_of(document, _steps(1, 200)) + 1}): a <Record> inside "
        f"<Record> opened at line 11 (byte {_byte_of(document, unclosed) + 1}) (is its </Record> "
        "missing?); the 2 records before it were read, nothing after it"
    )
    c = fault.report.counts
    assert (c.read, c.landed, status) == (2, 2, "failed")
    samples = landed(engine, user)
    assert samples[["metric", "value"]].values.tolist() == [["HEART_RATE", 61.0], ["STEPS", 100.0]]
    assert samples["timezone"].iloc[0] == "Europe/Berlin"  # its metadata was read


def test_structure_is_followed_across_pieces_and_the_fault_is_located_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 KiB reads: a correlation of 100 child records spans several pieces and adds no record; an orphan
    </Correlation> 1,000 records later is reported at its line and byte (the DTD removed before parsing counted)."""
    monkeypatch.setattr(apple_archive, "_READ_SIZE", 4096)
    children = "".join(_steps(i % 60, 5000 + i) for i in range(100))
    before = "".join(_steps(i % 60, i) for i in range(1000))
    body = (
        _steps(0, 1) + _BLOOD_PRESSURE + children + " </Correlation>\n" + before + " </Correlation>\n" + _steps(59, 7)
    )
    path = tmp_path / "export.xml"
    document = APPLE_HEADER + body + "</HealthData>\n"
    path.write_text(document, encoding="utf-8")
    frames: list[pd.DataFrame] = []
    with pytest.raises(AppleExportError) as raised:
        for frame, _ in read_export(path, "someone", chunk_size=300):
            frames.append(frame)
    # line 10: one record; 11: <Correlation>; 12-111: children; 112: </Correlation>; 113-1112: records; 1113: orphan
    orphan = len(document.encode("utf-8")) - len(" </Correlation>\n" + _steps(59, 7) + "</HealthData>\n") + 1
    assert str(raised.value) == (
        f"export.xml is damaged at line 1113 (byte {orphan}): a stray </Correlation> (no <Correlation> is open); "
        "the 1,001 records before it were read, nothing after it"
    )
    values = pd.concat(frames)["value"].astype(int).tolist()
    assert values == [1, *range(1000)]


def test_the_fixtures_are_well_formed(tmp_path: Path) -> None:
    """Every real export reads to its end without a structural fault."""
    for path in sorted(APPLE.glob("*.xml")) + sorted(APPLE.glob("*.zip")):
        assert sum(len(frame) for frame, _ in read_export(path, "someone")) > 0


def test_a_fault_in_a_zipped_export_is_located_in_its_xml(tmp_path: Path) -> None:
    document = APPLE_HEADER + _steps(0, 100) + _steps(1, 200) + " </Record>\n" + _steps(2, 300) + "</HealthData>\n"
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("apple_health_export/export.xml", document)
    with pytest.raises(AppleExportError) as raised:
        list(read_export(archive, "someone"))
    assert str(raised.value) == (
        f"export.zip is damaged at line 12 (byte {_byte_of(document, ' </Record>') + 1}): a stray </Record> (no "
        "<Record> is open); the 2 records before it were read, nothing after it"
    )
