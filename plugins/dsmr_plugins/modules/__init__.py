"""Plugin modules: the examples shipped here plus a user's folder (``DSMR_PLUGINS_DIR``).

A module ``foo.py`` in the user's folder imports as ``dsmr_plugins.modules.foo``, the path
DSMR-reader's docs use. The user's folder is searched first, so it can replace an example.
"""

import os
from pathlib import Path


def add_modules_dir(directory: str | os.PathLike[str]) -> bool:
    """Make the modules in ``directory`` importable here; False when it was already added."""
    folder = str(Path(directory).expanduser().resolve())
    if folder in __path__:
        return False
    __path__.insert(0, folder)
    return True


_from_env = os.environ.get("DSMR_PLUGINS_DIR")
if _from_env:
    add_modules_dir(_from_env)
