"""A manufacturer whose URNs use another company prefix length than GS1's table gives is still
found from a GTIN and serial: verification answers and saleable returns."""

from __future__ import annotations

from pathlib import Path

from tests.service.conftest import Client, capture

DOCUMENT = Path(__file__).resolve().parents[2] / "fixtures" / "epcis" / "ndc-partition-1.2.xml"
GTIN = "00300011123454"  # spelled urn:epc:id:sgtin:0300011.012345.* in the document
WHOLESALER_GLN = "0399999999991"
QUERY = {
    "exp": "280630",
    "linkType": "verificationService",
    "context": "dscsaSaleableReturn",
    "reqGLN": WHOLESALER_GLN,
    "corrUUID": "5d0c0d6e-3c8e-4a53-9a1e-6f1f3b2a7c10",
}


async def _service(service: tuple[Client, dict[str, str]]) -> tuple[Client, dict[str, str]]:
    client, operator = service
    job = await capture(client, DOCUMENT.read_bytes(), operator)
    assert job["success"], job
    return service


async def test_verification_finds_a_serial_in_its_documents_spelling(
    responder_service: tuple[Client, dict[str, str]],
) -> None:
    client, operator = await _service(responder_service)
    found = await client.get(f"/vrs/gtin/{GTIN}/lot/LOT5/ser/10", params=QUERY, headers=operator)
    assert (await found.json())["data"] == {"verified": True}
    wrong_lot = await client.get(
        f"/vrs/gtin/{GTIN}/lot/LOT6/ser/11", params=QUERY, headers=operator
    )
    assert (await wrong_lot.json())["data"] == {
        "verified": False,
        "verificationFailureReason": "No_match_GTIN_Serial_Lot",
    }
    unknown = await client.get(f"/vrs/gtin/{GTIN}/lot/LOT5/ser/12", params=QUERY, headers=operator)
    assert (await unknown.json())["data"] == {
        "verified": False,
        "verificationFailureReason": "No_match_GTIN_Serial",
    }


async def test_a_return_is_matched_to_the_shipment_in_its_spelling(
    responder_service: tuple[Client, dict[str, str]],
) -> None:
    client, operator = await _service(responder_service)
    reply = await client.post(
        "/returns",
        json={"scan": f"(01){GTIN}(21)10(10)LOT5(17)280630", "from": WHOLESALER_GLN},
        headers=operator,
    )
    body = await reply.json()
    assert body["disposition"] == "restocked", body
    assert body["epc"] == "urn:epc:id:sgtin:0300011.012345.10"
    # The restock event names the pack as its history does: one serial, no orphan.
    traced = await (await client.get(f"/trace/{body['epc']}", headers=operator)).json()
    assert traced["events"][-1]["biz_step"] == "receiving", traced["events"][-1]
    exceptions = await (await client.get("/exceptions", headers=operator)).json()
    assert exceptions["exceptions"] == []
    never_shipped = await client.post(
        "/returns",
        json={"scan": f"(01){GTIN}(21)11(10)LOT5(17)280630", "from": WHOLESALER_GLN},
        headers=operator,
    )
    assert (await never_shipped.json())["disposition"] == "rejected"


async def test_a_scan_or_digital_link_traces_the_package_in_its_spelling(
    responder_service: tuple[Client, dict[str, str]],
) -> None:
    client, operator = await _service(responder_service)
    for identifier in (f"https://id.gs1.org/01/{GTIN}/21/10", f"(01){GTIN}(21)10"):
        reply = await client.get(f"/trace/{identifier}", headers=operator)
        assert reply.status == 200, await reply.text()
        body = await reply.json()
        assert body["identifier"] == "urn:epc:id:sgtin:0300011.012345.10"
        assert [e["biz_step"] for e in body["events"]] == ["commissioning", "shipping"]
    unknown = await client.get(f"/trace/https://id.gs1.org/01/{GTIN}/21/12", headers=operator)
    assert unknown.status == 404
