"""The foundation every floor stands on: the shared types (``model``), the error hierarchy (``errors``), the
configuration (``config``, ``yamlfile``), the numba kernel loader (``kernels``) and the plug-in registry
(``plugins``). It imports nothing of soc above it (tests/test_layers.py checks)."""
