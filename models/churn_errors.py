"""The churn model's input error, on its own so that the model, its tuning and its evaluation
can all raise it without importing one another."""


class ChurnModelError(ValueError):
    """Input the churn model cannot score; the message names the column (and customer)."""


__all__ = ["ChurnModelError"]
