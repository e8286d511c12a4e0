"""``dscsa validate|hash|convert`` run through the real CLI on real EPCIS files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import main

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared/reference/data"
VECTORS = REFERENCE / "event-hash-vectors/tests/examples"
FIXTURES = ROOT / "fixtures/epcis"
EVERY_FIELD = FIXTURES / "every-field-2.0.xml"
SCENARIO = ROOT / "fixtures/scenarios/dscsa/1-manufacturer-to-wholesaler.xml"
# GS1's hash vectors live beside the clone, not in it: the tests that compare against them
# skip when they are absent; everything else runs on the project's own fixtures.
needs_vectors = pytest.mark.skipif(
    not VECTORS.is_dir(), reason=f"GS1's event-hash vectors are not beside the clone: {VECTORS}"
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_validate_accepts_valid_documents_of_each_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = [EVERY_FIELD, FIXTURES / "dscsa-shipment-1.2.xml", FIXTURES / "dscsa-shipment.jsonld"]
    status, out, _ = _run(capsys, "validate", *map(str, files))
    assert (status, out) == (0, "")


def test_validate_reports_one_located_problem_per_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = FIXTURES / "invalid" / "missing_action.xml"
    status, out, _ = _run(capsys, "validate", str(SCENARIO), str(bad))
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{bad}:19: ")
    assert "'action' expected" in lines[0]
    assert lines[0].endswith("(at /epcis:EPCISDocument/EPCISBody/EventList/ObjectEvent[3])")


def test_validate_json_lists_the_problems(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [FIXTURES / "invalid" / f"{name}.xml" for name in ("missing_action", "unknown_element")]
    bad.append(FIXTURES / "invalid" / "wrong_element_order.xml")
    status, out, _ = _run(capsys, "validate", "--json", *map(str, bad))
    problems = json.loads(out)
    assert status == 1
    assert {p["source"] for p in problems} == {str(p) for p in bad}
    assert all(p["line"] and p["reason"] for p in problems)


@pytest.mark.parametrize("name", ["entity_expansion.xml", "external_entity.xml"])
def test_validate_refuses_hostile_xml(capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = FIXTURES / "invalid" / name
    status, out, _ = _run(capsys, "validate", str(path))
    assert status == 1
    assert out.startswith(str(path))
    assert "refused" in out.lower() or "dtd" in out.lower()


def test_validate_reports_a_missing_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.xml"
    status, out, _ = _run(capsys, "validate", str(missing))
    assert status == 1
    assert out.startswith(f"{missing}: cannot read the file")


@needs_vectors
@pytest.mark.parametrize(
    "name", ["epcisDocWithVariousEventTypes.xml", "epcisDocWithShippingAndTransportingEvent.jsonld"]
)
def test_hash_prints_the_reference_hashes_in_order(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    status, out, _ = _run(capsys, "hash", str(VECTORS / name))
    assert status == 0
    assert out.split() == (VECTORS / name).with_suffix(".hashes").read_text().split()


def test_hash_with_another_algorithm(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(
        capsys, "hash", "--algorithm", "sha-512", str(FIXTURES / "dscsa-shipment.jsonld")
    )
    assert status == 0
    lines = out.split()
    assert lines
    assert all(line.startswith("ni:///sha-512;") for line in lines)
    assert {len(line) for line in lines} == {len("ni:///sha-512;?ver=CBV2.0") + 128}


def test_hash_of_an_invalid_document_fails_with_a_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = FIXTURES / "invalid" / "external_entity.xml"
    status, out, err = _run(capsys, "hash", str(path))
    assert (status, out) == (1, "")
    assert err.startswith(str(path))


@pytest.mark.parametrize("target", ["1.2-xml", "2.0-xml", "2.0-jsonld"])
def test_convert_keeps_every_event_hash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str
) -> None:
    source = EVERY_FIELD  # all five event types, every field
    out_file = tmp_path / f"converted.{target}"
    status, out, _ = _run(capsys, "convert", str(source), "--to", target, "-o", str(out_file))
    assert (status, out) == (0, "")
    assert not list(tmp_path.glob(".*partial"))
    status, original, _ = _run(capsys, "hash", str(source))
    status, converted, _ = _run(capsys, "hash", str(out_file))
    assert status == 0
    assert converted == original


def test_convert_writes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "convert", str(SCENARIO), "--to", "2.0-jsonld")
    assert status == 0
    document = json.loads(out)
    assert len(document["epcisBody"]["eventList"]) == 7


def test_convert_failure_leaves_no_output_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "out.xml"
    source = FIXTURES / "invalid" / "external_entity.xml"
    status, _, err = _run(capsys, "convert", str(source), "--to", "2.0-xml", "-o", str(out_file))
    assert status == 1
    assert err
    assert list(tmp_path.iterdir()) == []


def test_console_script_runs(capsys: pytest.CaptureFixture[str]) -> None:
    script = Path(sys.executable).parent / "dscsa"
    result = subprocess.run(
        [str(script), "hash", str(EVERY_FIELD)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    _, in_process, _ = _run(capsys, "hash", str(EVERY_FIELD))
    assert result.stdout.split() == in_process.split()
    assert len(in_process.split()) == 5
