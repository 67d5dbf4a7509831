"""The engine's ground floor: errors, configs, devices, the family registry, image I/O, checkpoints (ours and bundled), run logs and project files."""
