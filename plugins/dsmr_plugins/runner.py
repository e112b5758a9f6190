"""The plugin runner: loads plugins, routes their receivers to workers, reloads on SIGHUP."""

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from dsmr_plugins import django_compat
from dsmr_plugins.acks import Release, no_hold
from dsmr_plugins.loader import IMPORT_ERRORS, import_plugin, not_found_hint, source_digest
from dsmr_plugins.modules import add_modules_dir
from dsmr_plugins.naming import check_plugin_path
from dsmr_plugins.settings import PluginSettings
from dsmr_plugins.worker import PluginWorker, Routed
from dsmr_shared.counters import Counters
from dsmr_shared.signals import Receiver, disconnect_wrapped, set_receiver_wrapper

log = logging.getLogger(__name__)


@dataclass
class Plugin:
    """A loaded plugin: its module, its worker and the receivers it connected."""

    path: str
    worker: PluginWorker
    module: ModuleType | None = None
    digest: str | None = None
    routes: list[Routed] = field(default_factory=list)


@dataclass
class _Importing(threading.local):
    """Which plugin the current thread is importing, and the receivers it connected so far."""

    plugin: Plugin | None = None
    staging: bool = False
    captured: list[Routed] = field(default_factory=list)


class PluginRunner:
    """Owns every plugin and its worker; the only writer of the receiver wrapper."""

    def __init__(
        self,
        settings: PluginSettings,
        counters: Counters,
        pause: Callable[[], AbstractContextManager[bool]] | None = None,
        hold: Callable[[], Release] = no_hold,
    ) -> None:
        self.settings = settings
        self._hold = hold
        self.counters = counters
        self.plugins: dict[str, Plugin] = {}
        self._pause = pause
        self._importing = _Importing()
        self._by_thread: dict[int, Plugin] = {}
        self._lock = threading.Lock()
        self._imported: set[str] = set()  # imported by us before: a re-import must run it again

    def install(self) -> None:
        """Hook Signal.connect, the django stand-in and the user's modules folder."""
        set_receiver_wrapper(self._wrap)
        if django_compat.install():
            log.debug("django.dispatch stand-in active (Django is not installed)")
        if self.settings.plugins_dir is not None:
            add_modules_dir(self.settings.plugins_dir)

    def uninstall(self) -> None:
        """Undo ``install`` (the modules folder stays on the search path)."""
        set_receiver_wrapper(None)

    # -- routing ------------------------------------------------------------------------------

    def _wrap(self, receiver: Receiver) -> Receiver:
        """Signal.connect calls this: a plugin's receiver becomes a call queued on its worker."""
        plugin = self._importing.plugin
        if plugin is not None:
            routed = plugin.worker.route(receiver)
            routed.active = not self._importing.staging
            self._importing.captured.append(routed)
            return routed
        with self._lock:
            owner = self._by_thread.get(threading.get_ident())
        if owner is None:
            return receiver  # not a plugin's connect (the runner's own code, tests)
        with self._lock:  # a receiver connected at run time, from inside a receiver
            known = next((r for r in owner.routes if r.receiver is receiver), None)
            if known is not None:
                return known  # connected again: Signal ignores it, and so must we
            routed = owner.worker.route(receiver)
            owner.routes.append(routed)
        return routed

    # -- loading ------------------------------------------------------------------------------

    def load_all(self, paths: Iterable[str]) -> None:
        """Import every plugin once; refused or failing ones are reported and skipped."""
        paths = list(paths)
        if not paths:
            log.warning("no plugins listed: set DSMRREADER_PLUGINS (see PLUGINS.md)")
        for path in paths:
            self._load(path)
        log.info("%d plugin(s) running: %s", len(self.plugins), ", ".join(self.plugins) or "none")

    def _load(self, path: str) -> None:
        problem = check_plugin_path(path)
        if problem is not None:
            self.counters.inc("refused_plugins")
            log.error("%s", problem)
            return
        plugin = Plugin(path, self._start_worker(path))
        try:
            fresh = path in self._imported
            plugin.module, plugin.routes = self._import(plugin, fresh=fresh, staging=False)
        except IMPORT_ERRORS as exc:
            self._import_failed(path, exc, "is skipped; the other plugins run")
            self._stop_worker(plugin, 0.0)
            return
        plugin.digest = source_digest(plugin.module)
        self.plugins[path] = plugin
        self._register_thread(plugin)
        self._report_loaded(plugin, "loaded")

    def _import(self, plugin: Plugin, *, fresh: bool, staging: bool) -> tuple[ModuleType, list[Routed]]:
        state = self._importing
        state.plugin, state.staging, state.captured = plugin, staging, []
        try:
            module = import_plugin(plugin.path, fresh=fresh)
            self._imported.add(plugin.path)
        except IMPORT_ERRORS:
            for routed in state.captured:
                routed.active = False  # a half-run import must not leave live receivers
            raise
        finally:
            state.plugin = None
        return module, state.captured

    def _import_failed(self, path: str, exc: BaseException, outcome: str) -> None:
        self.counters.inc("import_failures")
        log.error(
            "plugin %s could not be imported and %s. Fix it, then send SIGHUP to retry.%s",
            path,
            outcome,
            not_found_hint(path, exc),
            exc_info=exc,
        )

    def _report_loaded(self, plugin: Plugin, verb: str) -> None:
        names = ", ".join(sorted({r.name for r in plugin.routes})) or "none"
        log.info("plugin %s %s; receivers: %s", plugin.path, verb, names)
        if not plugin.routes:
            log.warning(
                "plugin %s connected no receiver while imported; it will never be called "
                "(did you forget signal.connect(...) or @receiver(...)?)",
                plugin.path,
            )

    # -- workers ------------------------------------------------------------------------------

    def _start_worker(self, path: str) -> PluginWorker:
        worker = PluginWorker(path, self.settings.queue_size(path), self.counters, self._hold)
        worker.start()
        return worker

    def _register_thread(self, plugin: Plugin) -> None:
        ident = plugin.worker.ident
        if ident is not None:
            with self._lock:
                self._by_thread[ident] = plugin

    def _stop_worker(self, plugin: Plugin, timeout: float) -> int:
        with self._lock:
            self._by_thread.pop(plugin.worker.ident or 0, None)
        return plugin.worker.stop(timeout)

    # -- reloading ----------------------------------------------------------------------------

    def reload(self, paths: list[str], plugins_dir: Path | None = None) -> None:
        """Apply a new plugin list: load new, re-import changed, drop removed; lose no event."""
        if plugins_dir is not None:
            add_modules_dir(plugins_dir)
        staged = [s for s in (self._stage(p) for p in paths if p in self.plugins) if s]
        for path in paths:
            if path not in self.plugins:
                self._load(path)
        removed = [p for path, p in self.plugins.items() if path not in paths]
        pause = self._pause() if self._pause else contextlib.nullcontext(False)
        with pause as exact:
            for plugin, module, routes in staged:
                self._swap(plugin, module, routes)
            for plugin in removed:
                self._retire(plugin.routes)
        if staged and not exact:
            log.info("delivery could not be held during the swap; one event may reach both versions")
        for plugin in removed:
            del self.plugins[plugin.path]
            threading.Thread(target=self._drain, args=(plugin,), daemon=True).start()
        log.info(
            "reloaded: %d re-imported, %d removed; %d plugin(s) running: %s",
            len(staged),
            len(removed),
            len(self.plugins),
            ", ".join(self.plugins) or "none",
        )

    def _stage(self, path: str) -> tuple[Plugin, ModuleType, list[Routed]] | None:
        plugin = self.plugins[path]
        if source_digest(plugin.module) == plugin.digest:
            return None
        try:
            module, routes = self._import(plugin, fresh=True, staging=True)
        except IMPORT_ERRORS as exc:
            self._import_failed(path, exc, "the previous version keeps running")
            return None
        return plugin, module, routes

    def _swap(self, plugin: Plugin, module: ModuleType, routes: list[Routed]) -> None:
        with self._lock:
            self._retire(plugin.routes)
            for routed in routes:
                routed.active = True
            plugin.module, plugin.routes = module, routes
        plugin.digest = source_digest(module)
        self._report_loaded(plugin, "re-imported (changed)")

    @staticmethod
    def _retire(routes: list[Routed]) -> None:
        for routed in routes:
            routed.active = False
            disconnect_wrapped(routed)

    def _drain(self, plugin: Plugin) -> None:
        left = self._stop_worker(plugin, self.settings.plugins_stop_timeout)
        log.info("plugin %s removed%s", plugin.path, f"; {left} event(s) left undone" if left else "")

    # -- watching and stopping ------------------------------------------------------------------

    def check_slow(self) -> None:
        """Report each delivery that has run longer than DSMR_PLUGINS_SLOW_WARNING."""
        for plugin in list(self.plugins.values()):
            slow = plugin.worker.slow_receiver(self.settings.plugins_slow_warning)
            if slow is not None:
                # Its queued events stop holding their MQTT acknowledgements, so the broker keeps
                # sending to the other plugins; a kill now would lose those events.
                released = plugin.worker.release_waiting()
                log.warning(
                    "plugin %s: receiver %s has been running for %.0f s; %d event(s) wait behind "
                    "it and were acknowledged to the broker so that other plugins are not delayed",
                    plugin.path,
                    slow[0],
                    slow[1],
                    released,
                )

    def stop(self, timeout: float, *, summary: bool = True) -> None:
        """Let workers finish their queues within ``timeout`` seconds, then log a summary."""
        for plugin in self.plugins.values():
            self._retire(plugin.routes)  # later deliveries must not queue for a finished worker
            plugin.worker.close()
        deadline = time.monotonic() + timeout  # one stuck plugin must not multiply the wait
        for plugin in self.plugins.values():
            left = plugin.worker.join(max(0.0, deadline - time.monotonic()))
            if summary:
                self._summarise(plugin, left)

    def _summarise(self, plugin: Plugin, left: int) -> None:
        count = self.counters.get
        p = plugin.path
        problems = count(f"receiver_errors:{p}") or count(f"queue_overflow:{p}") or left
        (log.warning if problems else log.info)(
            "plugin %s: %d event(s) received, %d handled, %d receiver error(s), %d dropped "
            "(queue full), %d left undone at stop",
            p,
            count(f"received:{p}"),
            count(f"handled:{p}"),
            count(f"receiver_errors:{p}"),
            count(f"queue_overflow:{p}"),
            left,
        )
