"""Model families: each module registers one with :func:`engine.registry.register_family`."""
