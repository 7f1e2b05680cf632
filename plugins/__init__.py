"""tsweep's built-in plugins, one module each, grouped by hook family.

They are registered through the ``tsweep`` entry-point group in pyproject.toml, exactly as a
third-party plugin is; the core never imports them by name.
"""
