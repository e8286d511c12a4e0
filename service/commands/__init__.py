"""Subcommands of the ``dscsa`` command line, grouped by what they work on."""
