"""Model families: each module registers one with :func:`engine.core.registry.register_family`."""
