"""Built-in launchers plugins."""
