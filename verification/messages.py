"""GS1 Lightweight Messaging verification messages: the request (path and query) and the response.

Requests come in the short-name path form ``gtin/{gtin}/lot/{lot}/ser/{serial}?exp=YYMMDD`` or
the numeric Digital Link form ``01/{gtin}/10/{lot}/21/{serial}?17=YYMMDD``; path segments are
percent-decoded one by one, so an encoded ``/`` inside a lot or serial stays part of it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, field_serializer, field_validator

from epcis.errors import InvalidDocumentError, InvalidIdentifierError, Problem
from epcis.identifiers import (
    Gs1Date,
    has_valid_check_digit,
    normalize_gtin,
    parse_yymmdd,
    validate_gln,
)

__all__ = [
    "LMVS_VERSION",
    "AdditionalInfo",
    "ConnectivityRequest",
    "FailureReason",
    "MalformedRequestError",
    "VerificationData",
    "VerificationRequest",
    "VerificationResponse",
    "format_timestamp",
    "parse_connectivity",
    "parse_request",
    "request_path",
    "response_json",
]

LMVS_VERSION = "1.3.0"
SALEABLE_RETURN = "dscsaSaleableReturn"
_VERIFICATION_SERVICE = "verificationService"
# GS1 AI 10 and 21 are up to 20 characters of CSet 82; anything longer is not a lot or serial.
_MAX_LOT_SERIAL = 20
_UUID = re.compile(r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
_BOOL = {"true": True, "false": False}


class FailureReason(StrEnum):
    """``verificationFailureReason`` (GS1 US LMVS for DSCSA R1.3)."""

    NO_MATCH_GTIN_SERIAL = "No_match_GTIN_Serial"
    NO_MATCH_LOT_EXPIRY = "No_match_GTIN_Serial_Lot_Expiry"
    NO_MATCH_LOT = "No_match_GTIN_Serial_Lot"
    NO_MATCH_EXPIRY = "No_match_GTIN_Serial_Expiry"
    NO_REASON_PROVIDED = "No_reason_provided"
    MANUFACTURER_POLICY = "Manufacturer_policy"
    NOT_FOR_REDISTRIBUTION = "Not_for_re-distribution"


class AdditionalInfo(StrEnum):
    """``additionalInfo``; LMVS 1.0.2 wrote ``recalled`` in lower case, so input is read
    case-insensitively and the 1.3 spelling is emitted."""

    EXPIRED = "Expired"
    EXPIRATION_EXTENDED = "ExpirationExtended"
    RECALLED = "Recalled"
    SUSPECT = "Suspect"
    ILLEGITIMATE = "Illegitimate"

    @classmethod
    def _missing_(cls, value: object) -> AdditionalInfo | None:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        return None


class MalformedRequestError(InvalidDocumentError):
    """A verification request that cannot be read (400); the problem points at the part."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason, (Problem(reason, path=where),))
        self.where = where


def format_timestamp(moment: datetime) -> str:
    """``2019-05-17T16:48:53.428Z``: UTC with milliseconds, as the standard's examples."""
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:
        # isoformat is several times cheaper than strftime and spells years from 1000 alike.
        return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class VerificationRequest(_Message):
    """One product identifier to verify, with who asks and why."""

    gtin: str
    lot: str
    serial: str
    # Gs1Date keeps the raw YYMMDD beside the date; checked as an instance, not field by field.
    expiry: InstanceOf[Gs1Date]
    req_gln: str | None = Field(default=None, alias="reqGLN")
    corr_uuid: str = Field(default_factory=lambda: str(uuid.uuid4()), alias="corrUUID")
    context: str | None = SALEABLE_RETURN
    link_type: str | None = Field(default=_VERIFICATION_SERVICE, alias="linkType")
    version: str | None = None
    ctrl_possess_att: bool | None = Field(default=None, alias="ctrlPossessAtt")
    contact_email: str | None = None
    contact_phone: str | None = None

    @property
    def expiry_date(self) -> date:
        return self.expiry.date

    def query(self) -> dict[str, str]:
        """The query string parameters a requestor sends."""
        params = {"exp": self.expiry.raw, "corrUUID": self.corr_uuid}
        optional = {
            "linkType": self.link_type,
            "context": self.context,
            "reqGLN": self.req_gln,
            "email": self.contact_email,
            "telephone": self.contact_phone,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        if self.ctrl_possess_att is not None:
            params["ctrlPossessAtt"] = "true" if self.ctrl_possess_att else "false"
        return params


class ConnectivityRequest(_Message):
    gtin: str
    req_gln: str | None = Field(default=None, alias="reqGLN")
    context: str | None = None


class VerificationData(_Message):
    verified: bool
    verification_failure_reason: FailureReason | None = Field(
        default=None, alias="verificationFailureReason"
    )
    additional_info: AdditionalInfo | None = Field(default=None, alias="additionalInfo")

    @field_validator("verification_failure_reason", mode="before")
    @classmethod
    def _known_reason(cls, value: Any) -> Any:
        # A reason outside the R1.3 list (QU4RTET's GTIN_not_found...) reads as "no reason".
        if isinstance(value, str) and value not in FailureReason._value2member_map_:
            return FailureReason.NO_REASON_PROVIDED
        return value


class VerificationResponse(_Message):
    """The 200 body; ``verificationFailureReason`` only when ``verified`` is false."""

    verification_timestamp: datetime = Field(alias="verificationTimestamp")
    responder_gln: str = Field(alias="responderGLN")
    data: VerificationData
    corr_uuid: str | None = Field(default=None, alias="corrUUID")

    @field_serializer("verification_timestamp")
    def _timestamp(self, value: datetime) -> str:
        return format_timestamp(value)

    def to_json(self) -> dict[str, Any]:
        """``model_dump(by_alias=True, exclude_none=True, mode="json")``, written out: the
        responder builds one per request and pydantic's general dump costs several times more
        (a differential test keeps the two equal)."""
        data = self.data
        return response_json(
            self.verification_timestamp,
            self.responder_gln,
            data.verified,
            data.verification_failure_reason,
            data.additional_info,
            self.corr_uuid,
        )


def response_json(
    timestamp: datetime,
    responder_gln: str,
    verified: bool,
    reason: FailureReason | None,
    info: AdditionalInfo | None,
    corr_uuid: str | None,
) -> dict[str, Any]:
    """The 200 body from its values, without building the models: the responder's answer
    to every request (:meth:`VerificationResponse.to_json` is this of its fields)."""
    body: dict[str, Any] = {"verified": verified}
    if reason is not None:
        body["verificationFailureReason"] = reason.value
    if info is not None:
        body["additionalInfo"] = info.value
    answer: dict[str, Any] = {
        "verificationTimestamp": format_timestamp(timestamp),
        "responderGLN": responder_gln,
        "data": body,
    }
    if corr_uuid is not None:
        answer["corrUUID"] = corr_uuid
    return answer


def _segment(raw: str, where: str) -> str:
    try:
        value = unquote(raw, errors="strict") if "%" in raw else raw
    except UnicodeDecodeError:
        raise MalformedRequestError(where, f"not percent-encoded UTF-8: {raw!r}") from None
    if not value:
        raise MalformedRequestError(where, f"{where.rpartition('/')[2]} is empty")
    return value


def _gtin(value: str, where: str) -> str:
    if len(value) != 14:
        raise MalformedRequestError(where, f"the GTIN must have 14 digits: {value!r}")
    try:
        return normalize_gtin(value)
    except InvalidIdentifierError as error:
        raise MalformedRequestError(where, str(error)) from None


def _lot_serial(value: str, where: str) -> str:
    if len(value) > _MAX_LOT_SERIAL or not value.isprintable() or not value.isascii():
        raise MalformedRequestError(where, f"not a GS1 lot or serial number: {value!r}")
    return value


_SHORT_NAMES = ("gtin", "lot", "ser")
_NUMERIC = ("01", "10", "21")


def _path_parts(path: str) -> tuple[str, str, str]:
    segments = [s for s in path.strip("/").split("/")]
    if len(segments) != 6:
        raise MalformedRequestError(
            "/path", "expected gtin/{gtin}/lot/{lot}/ser/{serial} or 01/{gtin}/10/{lot}/21/{serial}"
        )
    keys = tuple(segments[0::2])
    if keys not in (_SHORT_NAMES, _NUMERIC):
        raise MalformedRequestError("/path", f"unknown path keys {'/'.join(keys)}")
    gtin, lot, serial = (
        _segment(raw, f"/path/{name}")
        for raw, name in zip(segments[1::2], _SHORT_NAMES, strict=True)
    )
    return gtin, lot, serial


def _required(query: Mapping[str, str], *names: str) -> tuple[str, str]:
    for name in names:
        value = query.get(name)
        if value:
            return name, value
    raise MalformedRequestError(f"/query/{names[0]}", f"the {names[0]} parameter is missing")


def _optional_gln(query: Mapping[str, str]) -> str | None:
    value = query.get("reqGLN")
    if value is None:
        return None
    try:
        return validate_gln(value)
    except InvalidIdentifierError as error:
        raise MalformedRequestError("/query/reqGLN", str(error)) from None


def _corr_uuid(query: Mapping[str, str]) -> str:
    value = query.get("corrUUID")
    if value is None:
        # The requestor should send one; like other responders we make one up for the log.
        return str(uuid.uuid4())
    if not _UUID.match(value):
        raise MalformedRequestError("/query/corrUUID", f"corrUUID is not a UUID: {value!r}")
    return value


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    value = query.get(name)
    if value is None:
        return None
    flag = _BOOL.get(value.strip().lower())
    if flag is None:
        raise MalformedRequestError(f"/query/{name}", f"{name} must be true or false")
    return flag


def parse_request(
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
    *,
    today: date | None = None,
) -> VerificationRequest:
    """The request from the path after the service prefix (still percent-encoded), the query
    parameters and the headers; :class:`MalformedRequestError` says which part is wrong."""
    fast = _parse_common(path, query, headers, today)
    return fast if fast is not None else _parse_request_general(path, query, headers, today=today)


def _parse_common(
    path: str, query: Mapping[str, str], headers: Mapping[str, str] | None, today: date | None
) -> VerificationRequest | None:
    """The common shape (short names, nothing percent-encoded, ``exp``, valid values) read
    with cached GTIN, GLN and date checks and no second validation by pydantic; a responder
    parses one per request. Anything else, and every error, goes to the general reader,
    which alone words the problems (a differential test keeps the two equal)."""
    parts = path.split("/")
    if len(parts) != 6 or parts[0] != "gtin" or parts[2] != "lot" or parts[4] != "ser":
        return None
    _, gtin, _, lot, _, serial = parts
    raw_exp = query.get("exp")
    req_gln = query.get("reqGLN")
    corr_uuid = query.get("corrUUID")
    if (
        "%" in path
        or not raw_exp
        or not _plain_lot_serial(lot)
        or not _plain_lot_serial(serial)
        or not _valid_gtin14(gtin)
        or (req_gln is not None and not _valid_gln(req_gln))
        or (corr_uuid is not None and not _UUID.match(corr_uuid))
    ):
        return None
    possess = query.get("ctrlPossessAtt")
    flag = None if possess is None else _BOOL.get(possess.strip().lower())
    if possess is not None and flag is None:
        return None
    try:
        expiry = _expiry(raw_exp, today or date.today())
    except InvalidIdentifierError:
        return None
    return _constructed(
        {
            "gtin": gtin,
            "lot": lot,
            "serial": serial,
            "expiry": expiry,
            "req_gln": req_gln,
            "corr_uuid": corr_uuid if corr_uuid is not None else str(uuid.uuid4()),
            "context": query.get("context"),
            "link_type": query.get("linkType"),
            "version": (headers or {}).get("GS1US-Version"),
            "ctrl_possess_att": flag,
            "contact_email": query.get("email"),
            "contact_phone": query.get("telephone"),
        }
    )


def _constructed(values: dict[str, Any]) -> VerificationRequest:
    """``VerificationRequest.model_construct(**values)`` for every field's value, by field
    name in field order: the instance it makes, without its walk over aliases and defaults,
    which cost ~19 us, most of the fast parse (a test keeps the two identical)."""
    request = VerificationRequest.__new__(VerificationRequest)
    object.__setattr__(request, "__dict__", values)
    object.__setattr__(request, "__pydantic_fields_set__", set(values))
    object.__setattr__(request, "__pydantic_extra__", None)
    object.__setattr__(request, "__pydantic_private__", None)
    return request


def _plain_lot_serial(value: str) -> bool:
    return 0 < len(value) <= _MAX_LOT_SERIAL and value.isascii() and value.isprintable()


# Requests name few GTINs, GLNs and expiry dates, so their checks are remembered.
@lru_cache(maxsize=4096)
def _valid_gtin14(value: str) -> bool:
    return len(value) == 14 and value.isascii() and value.isdigit() and has_valid_check_digit(value)


@lru_cache(maxsize=1024)
def _valid_gln(value: str) -> bool:
    return len(value) == 13 and value.isascii() and value.isdigit() and has_valid_check_digit(value)


@lru_cache(maxsize=4096)
def _expiry(raw: str, today: date) -> Gs1Date:
    # Gs1Date is frozen, so one instance may be shared by many requests.
    return parse_yymmdd(raw, today=today)


def _parse_request_general(
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
    *,
    today: date | None = None,
) -> VerificationRequest:
    """Every shape of request, and every error with the part it points at."""
    raw_gtin, raw_lot, raw_serial = _path_parts(path)
    name, raw_exp = _required(query, "exp", "17")
    try:
        expiry = parse_yymmdd(raw_exp, today=today)
    except InvalidIdentifierError as error:
        raise MalformedRequestError(f"/query/{name}", str(error)) from None
    return VerificationRequest(
        gtin=_gtin(raw_gtin, "/path/gtin"),
        lot=_lot_serial(raw_lot, "/path/lot"),
        serial=_lot_serial(raw_serial, "/path/ser"),
        expiry=expiry,
        req_gln=_optional_gln(query),
        corr_uuid=_corr_uuid(query),
        context=query.get("context"),
        link_type=query.get("linkType"),
        version=(headers or {}).get("GS1US-Version"),
        ctrl_possess_att=_flag(query, "ctrlPossessAtt"),
        contact_email=query.get("email"),
        contact_phone=query.get("telephone"),
    )


def parse_connectivity(query: Mapping[str, str]) -> ConnectivityRequest:
    _, raw_gtin = _required(query, "gtin")
    return ConnectivityRequest(
        gtin=_gtin(raw_gtin, "/query/gtin"),
        req_gln=_optional_gln(query),
        context=query.get("context"),
    )


def request_path(request: VerificationRequest) -> str:
    """``gtin/{gtin}/lot/{lot}/ser/{serial}`` with each part percent-encoded."""
    parts = (request.gtin, request.lot, request.serial)
    encoded = [quote(part, safe="") for part in parts]
    return "/".join(f"{key}/{value}" for key, value in zip(_SHORT_NAMES, encoded, strict=True))
