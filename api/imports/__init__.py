"""Runs from elsewhere posted to the API: a TensorBoard event file becomes a client run."""
