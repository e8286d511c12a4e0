"""``report.html`` of an export bundle: a self-contained page for people, with inline SVG
chain-of-custody timelines (serials with the same chain share one), exceptions and
verification history in scope. No scripts, no external resources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, TextIO

from service.containment import TimelineEntry
from service.exception_records import ExceptionRecord
from service.export_scope import ScopeContents
from service.exports import ExportRequest
from service.master_data import PartyRecord, ProductRecord

__all__ = ["ReportData", "timeline_svg", "write_report"]

# Serials listed under a shared timeline before "and N more".
_LISTED_SERIALS = 50

_STEP_COLOURS = {
    "commissioning": "#2e7d32",
    "packing": "#6d4c41",
    "shipping": "#1565c0",
    "receiving": "#00838f",
    "unpacking": "#8d6e63",
    "dispensing": "#6a1b9a",
    "decommissioning": "#c62828",
    "destroying": "#c62828",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ccc;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f3f3f3}
.serials{font-family:monospace;font-size:.8rem;color:#444}.none{color:#666;font-style:italic}
svg text{font-family:system-ui,sans-serif}
"""


@dataclass(frozen=True, slots=True)
class ReportData:
    request: ExportRequest
    generated_at: datetime
    contents: ScopeContents
    products: dict[str, ProductRecord]
    parties: dict[str, PartyRecord]
    exceptions: Sequence[ExceptionRecord]
    # None: no verification log is kept (or it was not available to the export).
    verifications: Sequence[Any] | None


def write_report(out: TextIO, data: ReportData) -> None:
    request = data.request
    out.write('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
    out.write(f"<title>DSCSA export {escape(request.export_id)}</title>")
    out.write(f"<style>{_STYLE}</style></head><body>\n")
    out.write(f"<h1>DSCSA transaction information export {escape(request.export_id)}</h1>\n")
    _summary(out, data)
    _timelines(out, data)
    _exceptions(out, data.exceptions)
    _verifications(out, data.verifications)
    out.write("</body></html>\n")


def _summary(out: TextIO, data: ReportData) -> None:
    request = data.request
    rows = [
        ("Requested by", f"{request.requester} ({request.requester_kind.value})"),
        ("Reason", request.reason),
        ("Incident number (Form FDA 3911)", request.incident_number or "none given"),
        ("Scope", request.scope.describe()),
        ("Requested at", request.created_at.isoformat()),
        ("Due", request.due_at.isoformat()),
        ("Generated at", data.generated_at.isoformat()),
        ("Identifiers in scope", str(len(data.contents.targets))),
        ("Events", str(len(data.contents.facts))),
        ("Products", ", ".join(_product_label(p) for p in data.products.values()) or "none"),
    ]
    out.write("<h2>Summary</h2>\n<table>")
    for label, value in rows:
        out.write(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>")
    out.write("</table>\n")


def _product_label(product: ProductRecord) -> str:
    parts = [product.name, product.strength, product.dosage_form]
    label = " ".join(p for p in parts if p) or product.gtin
    return f"{label} (NDC {product.ndc})" if product.ndc else label


def _timelines(out: TextIO, data: ReportData) -> None:
    out.write("<h2>Chain of custody</h2>\n")
    groups: dict[tuple[str, ...], list[str]] = {}
    for epc in data.contents.targets:
        entries = data.contents.timelines.get(epc, [])
        groups.setdefault(tuple(e.facts.hash_id for e in entries), []).append(epc)
    if not groups:
        out.write('<p class="none">No identifier in scope has any recorded event.</p>\n')
        return
    out.write(
        f"<p>{len(data.contents.targets)} identifiers, {len(groups)} distinct chains; "
        "identifiers with the same chain share one timeline. Dashed markers are events "
        "on a container the identifier was in.</p>\n"
    )
    cache: _FragmentCache = {}
    for number, epcs in enumerate(groups.values(), start=1):
        entries = data.contents.timelines[epcs[0]]
        out.write(f"<h3>Chain {number}: {len(epcs)} identifier(s)</h3>\n")
        listed = " ".join(escape(e) for e in epcs[:_LISTED_SERIALS])
        more = len(epcs) - _LISTED_SERIALS
        suffix = f" and {more} more" if more > 0 else ""
        out.write(f'<p class="serials">{listed}{suffix}</p>\n')
        out.write(timeline_svg(entries, data.parties, cache))
        out.write("\n")


def _party_name(party_id: str | None, parties: dict[str, PartyRecord]) -> str:
    if party_id is None:
        return ""
    record = parties.get(party_id)
    return record.name if record and record.name else party_id


# Fragments of one entry's SVG group, split where its x coordinate goes, by
# (event hash, container path): identifiers that share events share most of their timelines.
_FragmentCache = dict[tuple[str, tuple[str, ...]], list[str]]


def timeline_svg(
    entries: Sequence[TimelineEntry],
    parties: dict[str, PartyRecord],
    cache: _FragmentCache | None = None,
) -> str:
    """One chain as a horizontal line of events, evenly spaced in time order.

    ``cache`` may be shared by the timelines of one report (same ``parties``): the text of an
    event is then formatted once however many identifiers it applies to.
    """
    step = 170
    width = max(1, len(entries)) * step + 40
    height = 150
    fragments = {} if cache is None else cache
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="chain of custody">',
        f'<line x1="20" y1="50" x2="{width - 20}" y2="50" stroke="#999" stroke-width="2"/>',
    ]
    for position, entry in enumerate(entries):
        key = (entry.facts.hash_id, entry.via)
        pieces = fragments.get(key)
        if pieces is None:
            pieces = fragments[key] = _entry_pieces(entry, parties)
        parts.append(str(20 + step // 2 + position * step).join(pieces))
    parts.append("</svg>")
    return "".join(parts)


def _entry_pieces(entry: TimelineEntry, parties: dict[str, PartyRecord]) -> list[str]:
    """The entry's SVG group, cut at each place its x coordinate is written."""
    facts = entry.facts
    colour = _STEP_COLOURS.get(facts.biz_step or "", "#555")
    dash = ' stroke-dasharray="3,2" fill="white"' if entry.inferred else f' fill="{colour}"'
    where = _party_name(facts.biz_location or facts.read_point, parties)
    to = _party_name(facts.destination("owning_party"), parties)
    label = facts.biz_step or facts.event_type
    title = f"{label} {facts.event_time.isoformat()} {facts.hash_id}"
    if entry.inferred:
        title += f" (via {' > '.join(entry.via)})"
    pieces = [
        f'<g><title>{escape(title)}</title><circle cx="',
        f'" cy="50" r="9" stroke="{colour}" stroke-width="2"{dash}/><text x="',
        f'" y="30" text-anchor="middle" font-size="12" fill="{colour}">'
        f'{escape(label)}</text><text x="',
        f'" y="78" text-anchor="middle" font-size="11">'
        f'{escape(facts.event_time.strftime("%Y-%m-%d %H:%M"))}</text><text x="',
        f'" y="96" text-anchor="middle" font-size="10">{escape(where[:28])}</text>',
    ]
    if to:
        pieces[-1] += '<text x="'
        pieces.append(f'" y="114" text-anchor="middle" font-size="10">to {escape(to[:25])}</text>')
    pieces[-1] += "</g>"
    return pieces


def _exceptions(out: TextIO, records: Sequence[ExceptionRecord]) -> None:
    out.write("<h2>Exceptions</h2>\n")
    if not records:
        out.write('<p class="none">No exception was recorded for anything in scope.</p>\n')
        return
    out.write(
        "<table><tr><th>Raised</th><th>Type</th><th>Status</th><th>Detail</th>"
        "<th>Resolutions</th></tr>"
    )
    for record in records:
        resolutions = "; ".join(
            f"{r.resolved_at.isoformat()} {r.resolved_by}: {r.note}" for r in record.resolutions
        )
        out.write(
            f"<tr><td>{escape(record.created_at.isoformat())}</td>"
            f"<td>{escape(record.type.value)}</td><td>{escape(record.status.value)}</td>"
            f"<td>{escape(record.detail)}</td><td>{escape(resolutions)}</td></tr>"
        )
    out.write("</table>\n")


def _verifications(out: TextIO, entries: Sequence[Any] | None) -> None:
    out.write("<h2>Verification history</h2>\n")
    if entries is None:
        out.write(
            '<p class="none">There is no verification history: no verification log '
            "was available to this export.</p>\n"
        )
        return
    if not entries:
        out.write('<p class="none">There is no verification history for anything in scope.</p>\n')
        return
    out.write(
        "<table><tr><th>Time</th><th>Direction</th><th>Requestor</th><th>GTIN</th>"
        "<th>Serial</th><th>Lot</th><th>Verified</th></tr>"
    )
    for entry in entries:
        cells = (
            entry.time.isoformat(),
            getattr(entry.direction, "value", str(entry.direction)),
            entry.requestor or "",
            entry.gtin or "",
            entry.serial or "",
            entry.lot or "",
            "yes" if entry.verified else "no",
        )
        out.write("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    out.write("</table>\n")
