"""Built-in rankers plugins."""
