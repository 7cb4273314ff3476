"""The HTTP serving API (``tailor serve``): ``create_app(settings)`` in :mod:`.app`."""
