"""``GET /shipments/{eventID}/epcis``: the DSCSA EPCIS 1.2 document for one of our shipments."""

from __future__ import annotations

from aiohttp import web

from service.handlers.traceability import TRACEABILITY, Authorize
from service.shipment_documents import build_shipment_document, shipment_document_bytes
from service.state import STORE

__all__ = ["shipment_routes"]

# Shipment documents carry our commercial data: operators and auditors only.
_READERS = ("operator", "auditor")


def _app_authorize(request: web.Request, roles: tuple[str, ...]) -> str:
    from service.auth import Role, require_role

    return require_role(request, *(Role(role) for role in roles)).partner_id


def shipment_routes(authorize: Authorize = _app_authorize) -> list[web.RouteDef]:
    """The route; ``authorize`` is the app's role check unless a test injects another."""

    async def get_shipment_document(request: web.Request) -> web.Response:
        authorize(request, _READERS)
        shipment = await build_shipment_document(
            request.app[STORE], request.app[TRACEABILITY], request.match_info["eventID"]
        )
        instance = shipment.document.head.header
        sbdh = instance.standard_business_document_header if instance else None
        name = sbdh.document_identification.instance_identifier if sbdh else "shipment"
        return web.Response(
            body=shipment_document_bytes(shipment),
            content_type="application/xml",
            charset="utf-8",
            headers={
                "GS1-EPCIS-Version": "1.2",
                "Content-Disposition": f'attachment; filename="{name}.xml"',
            },
        )

    return [web.get("/shipments/{eventID:.+}/epcis", get_shipment_document, allow_head=False)]
