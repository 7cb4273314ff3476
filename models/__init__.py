"""Plain-Python ML code: point-in-time features, interaction matrices and the models built on them.

Nothing here imports Prefect or MLflow, so every piece can be used and tested on its own.
"""
