"""tailor: sales-personalization pipelines for retailers."""

__version__ = "0.1.0"
