"""SimpleEventQuery: URL parameters to a typed :class:`EventQuery`, and its reference semantics.

:func:`parse_query_params` accepts the EPCIS 1.2 and 2.0 spellings of every supported
parameter; values may be URNs, Web URIs or bare words and are normalised to the forms the
model and the store index use. :func:`matches` says, in plain Python over a model event,
which events a query selects: the storage adapters are tested against it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Literal

from epcis.errors import EPCISError, InvalidIdentifierError
from epcis.identifiers import epc_match_key
from epcis.model import (
    AggregationEvent,
    AssociationEvent,
    EventBase,
    ObjectEvent,
    QuantityElement,
    TransactionEvent,
    TransformationEvent,
    XmlElement,
)
from epcis.vocabulary import CBVKind, canonical

__all__ = [
    "CBVMDA_NAMESPACE",
    "PAGING_PARAMETERS",
    "EpcFilter",
    "EventQuery",
    "OrderField",
    "QueryParameterError",
    "QueryTooLargeError",
    "event_class_keys",
    "event_epc_keys",
    "identifier_key",
    "ilmd_lot_and_expiry",
    "matches",
    "parse_query_params",
]

CBVMDA_NAMESPACE = "urn:epcglobal:cbv:mda"
# REST paging parameters travel with the query but are not SimpleEventQuery parameters.
PAGING_PARAMETERS = frozenset({"perPage", "nextPageToken"})

OrderField = Literal["eventTime", "recordTime"]
_ACTIONS = frozenset({"ADD", "OBSERVE", "DELETE"})
# A wildcard may replace only a free-form last component, so a pattern is a key prefix.
_PATTERN_SCHEMES = {"sgtin": "sgtin", "sgln": "sgln", "grai": "grai", "giai": "giai"}
_SENTINEL = "Q9"


class QueryParameterError(EPCISError, ValueError):
    """A query parameter is unknown, malformed, or conflicts with another (400)."""

    problem_type = "epcisException:QueryParameterException"
    status = 400


class QueryTooLargeError(EPCISError):
    """More events match than ``maxEventCount`` allows (413)."""

    problem_type = "epcisException:QueryTooLargeException"
    status = 413


# --- identifiers -------------------------------------------------------------------------


def identifier_key(value: str) -> str:
    """The comparison key of an identifier (EPC, location, party, transaction ID).

    EPC URNs and GS1 Digital Link URIs of the same thing give the same key; anything that is
    not a GS1 identifier is compared as written (trimmed).
    """
    value = value.strip()
    try:
        return epc_match_key(value)
    except (InvalidIdentifierError, ValueError):
        return value


@dataclass(frozen=True, slots=True)
class EpcFilter:
    """Identifier keys to match exactly, or key prefixes from EPC pattern URIs."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def accepts(self, key: str) -> bool:
        return key in self.exact or any(key.startswith(prefix) for prefix in self.prefixes)

    def accepts_any(self, keys: Iterable[str]) -> bool:
        return any(self.accepts(key) for key in keys)


def _pattern_prefix(template: str) -> str:
    """Key prefix of every identifier ``template`` (with the sentinel as last part) covers."""
    key = identifier_key(template)
    if not key.endswith(_SENTINEL) or (key == template and ":idpat:" in template):
        raise QueryParameterError(f"unsupported EPC pattern: {template}")
    return key[: -len(_SENTINEL)]


def _epc_filter(name: str, raw: str, *, classes: bool = False) -> EpcFilter:
    exact: set[str] = set()
    prefixes: list[str] = []
    for value in _split(name, raw):
        if not value.startswith("urn:epc:idpat:"):
            exact.add(identifier_key(value))
            continue
        scheme, _, body = value[len("urn:epc:idpat:") :].partition(":")
        parts = body.split(".")
        if scheme not in _PATTERN_SCHEMES or parts[-1] != "*" or "*" in parts[:-1]:
            raise QueryParameterError(
                f"{name}: unsupported EPC pattern {value!r} (only the last component may be '*')"
            )
        stem = ".".join(parts[:-1])
        if classes:
            if scheme != "sgtin":
                raise QueryParameterError(f"{name}: unsupported class pattern {value!r}")
            # An SGTIN pattern names the product: its class-level idpat and all its lots.
            exact.add(identifier_key(value))
            prefixes.append(_pattern_prefix(f"urn:epc:class:lgtin:{stem}.{_SENTINEL}"))
        else:
            prefixes.append(_pattern_prefix(f"urn:epc:id:{scheme}:{stem}.{_SENTINEL}"))
    return EpcFilter(frozenset(exact), tuple(prefixes))


# --- the query ---------------------------------------------------------------------------

TypedValues = tuple[tuple[str, frozenset[str]], ...]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A parsed SimpleEventQuery; ``None`` (or empty) means the criterion is not applied.

    Identifier criteria hold :func:`identifier_key` keys; vocabulary criteria hold canonical
    model spellings. Each (type, values) pair of ``biz_transactions``, ``sources`` and
    ``destinations`` must be met by one entry of the event's list.
    """

    event_types: frozenset[str] | None = None
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    ge_record_time: datetime | None = None
    lt_record_time: datetime | None = None
    actions: frozenset[str] | None = None
    biz_steps: frozenset[str] | None = None
    dispositions: frozenset[str] | None = None
    read_points: frozenset[str] | None = None
    biz_locations: frozenset[str] | None = None
    match_epc: EpcFilter | None = None
    match_parent_id: EpcFilter | None = None
    match_any_epc: EpcFilter | None = None
    match_epc_class: EpcFilter | None = None
    event_ids: frozenset[str] | None = None
    biz_transactions: TypedValues = ()
    sources: TypedValues = ()
    destinations: TypedValues = ()
    lots: frozenset[str] | None = None
    expiry_dates: frozenset[date] | None = None
    error_declared: bool | None = None
    order_by: OrderField | None = None
    # None: not given (DESC with orderBy, capture order otherwise).
    order_descending: bool | None = None
    event_count_limit: int | None = None
    max_event_count: int | None = None

    @property
    def sort_field(self) -> OrderField:
        """What results are ordered by: ``orderBy``, else record time (capture order)."""
        return self.order_by or "recordTime"

    @property
    def descending(self) -> bool:
        """DESC by default when ``orderBy`` is given; capture order (ascending) otherwise."""
        if self.order_descending is not None:
            return self.order_descending
        return self.order_by is not None

    def fingerprint(self) -> str:
        """A stable digest of the criteria and order, tying a page token to its query."""
        state = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}
        encoded = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()[:32]


def _jsonable(value: object) -> object:
    if isinstance(value, frozenset):
        return sorted(_jsonable(item) for item in value)  # type: ignore[type-var]
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, EpcFilter):
        return [_jsonable(value.exact), list(value.prefixes)]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- parsing -----------------------------------------------------------------------------


def _split(name: str, raw: str) -> list[str]:
    values = [value.strip() for value in raw.split("|")]
    if not raw.strip() or any(not value for value in values):
        raise QueryParameterError(f"{name}: empty value in {raw!r}")
    return values


def _time(name: str, raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise QueryParameterError(f"{name}: not an ISO 8601 date-time: {raw!r}") from None
    if moment.tzinfo is None:
        raise QueryParameterError(f"{name}: the time needs a time zone offset: {raw!r}")
    return moment.astimezone(UTC)


def _date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        raise QueryParameterError(f"{name}: not an ISO 8601 date: {raw!r}") from None


def _count(name: str, raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise QueryParameterError(f"{name}: not a positive integer: {raw!r}")
    return int(raw)


def _boolean(name: str, raw: str) -> bool:
    # EPCIS 1.2 EXISTS_ parameters carry no value; REST clients send true/false.
    lowered = raw.strip().lower()
    if lowered in {"", "true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise QueryParameterError(f"{name}: not a boolean: {raw!r}")


def _vocab(kind: CBVKind) -> Callable[[str, str], frozenset[str]]:
    return lambda name, raw: frozenset(canonical(kind, value) for value in _split(name, raw))


def _keys(name: str, raw: str) -> frozenset[str]:
    return frozenset(identifier_key(value) for value in _split(name, raw))


def _actions(name: str, raw: str) -> frozenset[str]:
    values = frozenset(value.upper() for value in _split(name, raw))
    if not values <= _ACTIONS:
        raise QueryParameterError(f"{name}: actions are ADD, OBSERVE or DELETE, not {raw!r}")
    return values


def _order_by(name: str, raw: str) -> OrderField:
    value = raw.strip()
    if value == "eventTime":
        return "eventTime"
    if value == "recordTime":
        return "recordTime"
    raise QueryParameterError(f"{name}: only eventTime or recordTime are supported: {raw!r}")


def _direction(name: str, raw: str) -> bool:
    value = raw.strip().upper()
    if value not in {"ASC", "DESC"}:
        raise QueryParameterError(f"{name}: ASC or DESC, not {raw!r}")
    return value == "DESC"


_FIXED: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "eventType": ("event_types", lambda name, raw: frozenset(_split(name, raw))),
    "GE_eventTime": ("ge_event_time", _time),
    "LT_eventTime": ("lt_event_time", _time),
    "GE_recordTime": ("ge_record_time", _time),
    "LT_recordTime": ("lt_record_time", _time),
    "EQ_action": ("actions", _actions),
    "EQ_bizStep": ("biz_steps", _vocab(CBVKind.BIZ_STEP)),
    "EQ_disposition": ("dispositions", _vocab(CBVKind.DISPOSITION)),
    "EQ_readPoint": ("read_points", _keys),
    "EQ_bizLocation": ("biz_locations", _keys),
    "MATCH_epc": ("match_epc", _epc_filter),
    "MATCH_parentID": ("match_parent_id", _epc_filter),
    "MATCH_anyEPC": ("match_any_epc", _epc_filter),
    "MATCH_epcClass": ("match_epc_class", lambda name, raw: _epc_filter(name, raw, classes=True)),
    "EQ_eventID": ("event_ids", lambda name, raw: frozenset(_split(name, raw))),
    "EXISTS_errorDeclaration": ("error_declared", _boolean),
    "orderBy": ("order_by", _order_by),
    "orderDirection": ("order_descending", _direction),
    "eventCountLimit": ("event_count_limit", _count),
    "maxEventCount": ("max_event_count", _count),
}

_TYPED_FAMILIES = {
    "EQ_bizTransaction_": ("biz_transactions", CBVKind.BIZ_TRANSACTION_TYPE),
    "EQ_source_": ("sources", CBVKind.SOURCE_DESTINATION_TYPE),
    "EQ_destination_": ("destinations", CBVKind.SOURCE_DESTINATION_TYPE),
}

# EQ_ILMD_ field names: the 1.2 form (namespace#name) and the 2.0 CURIE form.
_ILMD_FIELD = re.compile(rf"^EQ_ILMD_(?:{re.escape(CBVMDA_NAMESPACE)}#|cbvmda:)(\w+)$")
_ILMD_FIELDS = {"lotNumber": "lots", "itemExpirationDate": "expiry_dates"}


def parse_query_params(params: Mapping[str, str]) -> EventQuery:
    """Parse SimpleEventQuery URL parameters (perPage and nextPageToken are skipped).

    Raises QueryParameterError for an unknown, unsupported or malformed parameter.
    """
    values: dict[str, object] = {}
    typed: dict[str, dict[str, frozenset[str]]] = {name: {} for name, _ in _TYPED_FAMILIES.values()}
    for name, raw in params.items():
        if name in PAGING_PARAMETERS:
            continue
        if name in _FIXED:
            attribute, parse = _FIXED[name]
            values[attribute] = parse(name, raw)
        elif family := next((f for f in _TYPED_FAMILIES if name.startswith(f)), None):
            attribute, kind = _TYPED_FAMILIES[family]
            type_value = canonical(kind, name[len(family) :])
            if not type_value:
                raise QueryParameterError(f"{name}: the parameter name lacks a type")
            typed[attribute][type_value] = _keys(name, raw)
        elif match := _ILMD_FIELD.match(name):
            values.update(_ilmd_criterion(name, match.group(1), raw))
        else:
            raise QueryParameterError(f"unknown or unsupported query parameter: {name}")
    for attribute, by_type in typed.items():
        values[attribute] = tuple(sorted(by_type.items()))
    return _checked(EventQuery(**values))  # type: ignore[arg-type]


def _ilmd_criterion(name: str, local_name: str, raw: str) -> dict[str, object]:
    attribute = _ILMD_FIELDS.get(local_name)
    if attribute == "lots":
        return {attribute: frozenset(_split(name, raw))}
    if attribute == "expiry_dates":
        return {attribute: frozenset(_date(name, value) for value in _split(name, raw))}
    raise QueryParameterError(f"{name}: only lotNumber and itemExpirationDate ILMD are indexed")


def _checked(query: EventQuery) -> EventQuery:
    if query.event_count_limit is not None and query.max_event_count is not None:
        raise QueryParameterError("eventCountLimit and maxEventCount are mutually exclusive")
    if query.event_count_limit is not None and query.order_by is None:
        raise QueryParameterError("eventCountLimit needs orderBy")
    return query


# --- reference semantics -----------------------------------------------------------------


def _keyed(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(identifier_key(value) for value in values)


def event_epc_keys(event: EventBase) -> tuple[tuple[str, str], ...]:
    """(role, key) for every instance identifier; roles: epc, child, parent, input, output."""
    roles: list[tuple[str, tuple[str, ...]]] = []
    if isinstance(event, ObjectEvent | TransactionEvent):
        roles.append(("epc", event.epc_list))
    if isinstance(event, AggregationEvent | AssociationEvent):
        roles.append(("child", event.child_epcs))
    if isinstance(event, AggregationEvent | AssociationEvent | TransactionEvent):
        roles.append(("parent", (event.parent_id,) if event.parent_id else ()))
    if isinstance(event, TransformationEvent):
        roles += [("input", event.input_epc_list), ("output", event.output_epc_list)]
    return tuple((role, key) for role, values in roles for key in _keyed(values))


def event_class_keys(event: EventBase) -> tuple[tuple[str, str], ...]:
    """(role, class key) for every quantity element; roles: epc, child, input, output."""
    roles: list[tuple[str, tuple[QuantityElement, ...]]] = []
    if isinstance(event, ObjectEvent | TransactionEvent):
        roles.append(("epc", event.quantity_list))
    if isinstance(event, AggregationEvent | AssociationEvent):
        roles.append(("child", event.child_quantity_list))
    if isinstance(event, TransformationEvent):
        roles += [("input", event.input_quantity_list), ("output", event.output_quantity_list)]
    return tuple(
        (role, identifier_key(element.epc_class))
        for role, elements in roles
        for element in elements
    )


def ilmd_lot_and_expiry(event: EventBase) -> tuple[str | None, date | None]:
    """The ILMD ``cbvmda:lotNumber`` and ``cbvmda:itemExpirationDate`` of an event, if any."""
    ilmd: tuple[XmlElement, ...] = getattr(event, "ilmd", None) or ()
    lot = expiry = None
    for element in ilmd:
        if element.namespace != CBVMDA_NAMESPACE or element.text is None:
            continue
        if element.name == "lotNumber":
            lot = element.text.strip()
        elif element.name == "itemExpirationDate":
            try:
                expiry = date.fromisoformat(element.text.strip()[:10])
            except ValueError:
                expiry = None
    return lot, expiry


def _in(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and value in allowed)


def _typed_match(criteria: TypedValues, entries: Iterable[tuple[str, str]]) -> bool:
    pairs = set(entries)
    return all(any((kind, value) in pairs for value in values) for kind, values in criteria)


def _in_range(moment: datetime | None, ge: datetime | None, lt: datetime | None) -> bool:
    if ge is None and lt is None:
        return True
    return moment is not None and (ge is None or moment >= ge) and (lt is None or moment < lt)


def matches(query: EventQuery, event: EventBase) -> bool:
    """Whether ``event`` (with its recordTime set) satisfies every criterion of ``query``.

    Written straight over the model, independently of the store index, so adapters can be
    checked against it.
    """
    epcs = event_epc_keys(event)
    lot, expiry = ilmd_lot_and_expiry(event)
    action = getattr(event, "action", None)
    transactions = (
        (canonical(CBVKind.BIZ_TRANSACTION_TYPE, bt.type or ""), identifier_key(bt.value))
        for bt in event.biz_transaction_list
    )
    sdt = CBVKind.SOURCE_DESTINATION_TYPE
    checks = (
        _in(query.event_types, getattr(event, "type", None)),
        _in_range(event.event_time, query.ge_event_time, query.lt_event_time),
        _in_range(event.record_time, query.ge_record_time, query.lt_record_time),
        _in(query.actions, str(action) if action is not None else None),
        _in(query.biz_steps, event.biz_step and canonical(CBVKind.BIZ_STEP, event.biz_step)),
        _in(
            query.dispositions,
            event.disposition and canonical(CBVKind.DISPOSITION, event.disposition),
        ),
        _in(query.read_points, event.read_point and identifier_key(event.read_point)),
        _in(query.biz_locations, event.biz_location and identifier_key(event.biz_location)),
        _filter_match(query.match_epc, epcs, {"epc", "child"}),
        _filter_match(query.match_parent_id, epcs, {"parent"}),
        _filter_match(query.match_any_epc, epcs, {"epc", "child", "parent", "input", "output"}),
        _filter_match(query.match_epc_class, event_class_keys(event), {"epc", "child"}),
        _in(query.event_ids, event.event_id),
        _typed_match(query.biz_transactions, transactions),
        _typed_match(
            query.sources,
            ((canonical(sdt, s.type), identifier_key(s.value)) for s in event.source_list),
        ),
        _typed_match(
            query.destinations,
            ((canonical(sdt, d.type), identifier_key(d.value)) for d in event.destination_list),
        ),
        _in(query.lots, lot),
        query.expiry_dates is None or (expiry is not None and expiry in query.expiry_dates),
        query.error_declared is None
        or query.error_declared == (event.error_declaration is not None),
    )
    return all(checks)


def _filter_match(
    epc_filter: EpcFilter | None, keys: tuple[tuple[str, str], ...], roles: set[str]
) -> bool:
    return epc_filter is None or epc_filter.accepts_any(key for role, key in keys if role in roles)
