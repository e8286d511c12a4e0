"""The shipped GS1 EPCIS 2.0 JSON-LD context and the prefix <-> XML namespace mapping.

Remote context URLs are recognised by name only and never fetched: the GS1 context is shipped
as ``epcis/contexts/epcis-context.jsonld``. JSON-LD prefixes are IRIs that are concatenated
with the local name, XML namespaces are not; the two differ for exactly one GS1 prefix,
``cbvmda`` (``urn:epcglobal:cbv:mda:`` in JSON-LD, ``urn:epcglobal:cbv:mda`` in XML), which is
mapped here. A namespace that does not end in a JSON-LD gen-delim (``/``, ``#``, ``:``...),
such as GS1 US healthcare's ``http://epcis.gs1us.org/hc/ns``, is written as an expanded term
definition ``{"@id": ns, "@prefix": true}`` so that the XML namespace survives verbatim; so is
a namespace that a plain prefix would map (an XML namespace ``urn:epcglobal:cbv:mda:``, seen in
the hash vectors): expanded definitions are always read verbatim.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "GS1_CONTEXT_URL",
    "GS1_CONTEXT_URLS",
    "GS1_PREFIXES",
    "GS1_TERMS",
    "context_entry",
    "gs1_context",
    "xml_namespace",
]

GS1_CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# Every spelling of the GS1 EPCIS 2.0 context seen in GS1 and OpenEPCIS artefacts; the
# cbv-/gs1- sub-contexts are part of the root context already.
GS1_CONTEXT_URLS = frozenset(
    {
        GS1_CONTEXT_URL,
        "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
        "https://gs1.github.io/EPCIS/epcis-context.jsonld",
        "https://id.gs1.org/epcis-context.jsonld",
        "https://gs1.github.io/EPCIS/cbv-context-bizstep.jsonld",
        "https://gs1.github.io/EPCIS/cbv-context-biztransaction-type.jsonld",
        "https://gs1.github.io/EPCIS/cbv-context-component.jsonld",
        "https://gs1.github.io/EPCIS/cbv-context-disposition.jsonld",
        "https://gs1.github.io/EPCIS/cbv-context-error-reason.jsonld",
        "https://gs1.github.io/EPCIS/cbv-context-sourcedest-type.jsonld",
        "https://gs1.github.io/EPCIS/gs1-context-measurement-type.jsonld",
        "https://gs1.github.io/EPCIS/gs1-context-sensor-alert-type.jsonld",
    }
)

# JSON-LD prefix IRIs whose XML namespace is spelled differently.
_XML_NAMESPACE_OF_IRI = {
    "urn:epcglobal:cbv:mda:": "urn:epcglobal:cbv:mda",
    "http://epcis.gs1us.org/hc/ns/": "http://epcis.gs1us.org/hc/ns",
    "http://epcis.gs1us.org/hc/ns#": "http://epcis.gs1us.org/hc/ns",
}
_GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")


@cache
def gs1_context() -> dict[str, Any]:
    """The shipped GS1 EPCIS 2.0 context (the value of its ``@context``)."""
    text = resources.files("epcis").joinpath("contexts/epcis-context.jsonld").read_text("utf-8")
    context: dict[str, Any] = json.loads(text)["@context"]
    return context


def _load_prefixes() -> dict[str, str]:
    return {
        term: xml_namespace(value)
        for term, value in gs1_context().items()
        if isinstance(value, str) and value.endswith(_GEN_DELIMS) and not term.startswith("@")
    }


def xml_namespace(iri: str) -> str:
    """The XML namespace a JSON-LD prefix IRI stands for."""
    return _XML_NAMESPACE_OF_IRI.get(iri, iri)


def context_entry(namespace: str) -> str | dict[str, Any]:
    """How an XML namespace is declared as a JSON-LD prefix so that it reads back unchanged."""
    if namespace == "urn:epcglobal:cbv:mda":
        return "urn:epcglobal:cbv:mda:"
    if namespace.endswith(_GEN_DELIMS) and namespace not in _XML_NAMESPACE_OF_IRI:
        return namespace
    return {"@id": namespace, "@prefix": True}


# Prefix -> XML namespace for the prefixes the GS1 context defines (epcis, cbv, cbvmda, gs1...).
GS1_PREFIXES: Mapping[str, str] = _load_prefixes()
# Every term of the GS1 context: protected, so a document may not redefine any of them.
GS1_TERMS = frozenset(term for term in gs1_context() if not term.startswith("@"))
