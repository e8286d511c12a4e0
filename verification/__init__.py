"""GS1 Lightweight Messaging verification: messages, responder decisions, requestor client."""
