"""Lets DSMR-reader plugins written with ``from django.dispatch import receiver`` run without Django.

The finder is appended to ``sys.meta_path``, so Python asks it only after every real finder has
failed: when Django is installed, Django wins and this module does nothing.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

from dsmr_shared.signals import Signal

P = ParamSpec("P")
R = TypeVar("R")

_PROVIDED = ("django", "django.dispatch")
_HINT = (
    "dsmr-plugins runs without Django and provides only django.dispatch (receiver, Signal). "
    "For Django's post_save, import post_save from dsmr_backend.signals instead (see PLUGINS.md)."
)


def receiver(signal: Signal | Iterable[Signal], **kwargs: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Connect the decorated function to one signal or a list of signals, as Django does."""
    signals: Sequence[Signal] = (
        (signal,) if isinstance(signal, Signal) else tuple(signal)  # Django accepts list/tuple
    )

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        for each in signals:
            each.connect(func, **kwargs)
        return func

    return decorator


class _CompatLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object is fine

    def exec_module(self, module: ModuleType) -> None:
        module.__doc__ = f"Stand-in for {module.__name__}, provided by dsmr-plugins. {_HINT}"
        if module.__name__ == "django.dispatch":
            module.receiver = receiver  # type: ignore[attr-defined]
            module.Signal = Signal  # type: ignore[attr-defined]


class DjangoCompatFinder(importlib.abc.MetaPathFinder):
    """Serves ``django`` and ``django.dispatch``; any other ``django.*`` fails with a hint."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """Return a spec for the two provided modules; explain why other django modules are missing."""
        if fullname in _PROVIDED:
            return importlib.util.spec_from_loader(fullname, _CompatLoader(), is_package=True)
        if fullname.startswith("django."):
            raise ModuleNotFoundError(f"No module named {fullname!r}. {_HINT}", name=fullname)
        return None


def install() -> bool:
    """Install the stand-in unless real Django is importable; True when the stand-in is active."""
    if any(isinstance(finder, DjangoCompatFinder) for finder in sys.meta_path):
        return True
    if importlib.util.find_spec("django") is not None:
        return False
    sys.meta_path.append(DjangoCompatFinder())
    return True


def uninstall() -> None:
    """Remove the stand-in and any module it created (for tests)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, DjangoCompatFinder)]
    for name in _PROVIDED:
        module = sys.modules.get(name)
        if module is not None and isinstance(module.__spec__ and module.__spec__.loader, _CompatLoader):
            del sys.modules[name]
