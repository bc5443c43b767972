"""Command-line interface: ``maskscope <command>``; one module per command."""
