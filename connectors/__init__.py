"""Channel connectors: the contract (base), the registry, and one package per channel.

Import ``connectors.base`` for the types, ``connectors.registry`` to look connectors up.
Importing this package loads no plugin (``connectors.registry.load_connectors()`` does).
"""
