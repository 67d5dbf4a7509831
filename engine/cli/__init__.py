"""The command line (``ganvas COMMAND`` or ``python -m engine.cli COMMAND``)."""
