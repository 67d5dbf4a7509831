"""The training mode: dataset checks and builders, a generated config form, and runs in a child process."""
