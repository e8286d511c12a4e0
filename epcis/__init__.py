"""Event hash, XML and JSON-LD codecs, identifiers and validation of GS1 EPCIS; pure, no I/O."""
