"""The DSCSA exchange service: HTTP app, stores, DSCSA rules, audit ledger, scheduler and CLI."""
