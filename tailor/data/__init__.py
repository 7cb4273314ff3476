"""Reading, validating, generating and importing retail data sets."""
