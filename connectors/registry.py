"""The connector registry: names -> factories, filled from the ``careflow.connectors`` entry points.

A factory is any callable ``factory(config: Mapping[str, Any]) -> Connector`` (a class
works). Plugins -- and careflow's own connectors -- declare one in their package metadata::

    [project.entry-points."careflow.connectors"]
    sms_example = "connectors.example_sms:ExampleSmsConnector"

Nothing is loaded at import time: ``load_connectors()`` reads the entry-point group when
called (the CLI, the API and the outbox dispatcher call it once at start), then the
channel bindings file named by ``$CAREFLOW_CONNECTORS`` if set. Every factory's
product is checked when it is built (``name``, ``send``, ``health``), and a broken plugin
fails with an error that names it instead of breaking careflow.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from connectors.base import Connector
from engine.errors import ConnectorError

__all__ = [
    "BINDINGS_ENV",
    "ENTRY_POINT_GROUP",
    "ConnectorRegistry",
    "PluginError",
    "bind_channel",
    "bind_channels",
    "check_connector",
    "connector_for_channel",
    "default_registry",
    "get_connector",
    "load_bindings",
    "load_connectors",
    "register",
    "unbind_channel",
]

ENTRY_POINT_GROUP = "careflow.connectors"
#: environment variable naming a YAML/JSON file of channel bindings (see load_bindings)
BINDINGS_ENV = "CAREFLOW_CONNECTORS"
_MAX_BINDINGS_FILE = 64 * 1024

Factory = Callable[[Mapping[str, Any]], Connector]


class PluginError(ConnectorError):
    """A connector plugin could not be loaded or does not fulfil the contract.

    Attributes:
        plugin: the registered name (or entry point) at fault.
    """

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(plugin, f"connector plugin {plugin!r}: {message}", retryable=False)


REQUIRED_METHODS = ("send", "health")


def check_connector(plugin: str, obj: Any) -> Connector:
    """Check that ``obj`` fulfils the Connector protocol; return it.

    Raises:
        PluginError: names the plugin and what is missing.
    """
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(obj, m, None))]
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        missing.insert(0, "name (a non-empty str attribute)")
    if missing:
        raise PluginError(plugin, f"{type(obj).__name__} lacks {', '.join(missing)}")
    return obj  # type: ignore[no-any-return]


def _check_factory(plugin: str, factory: Any) -> Factory:
    if not callable(factory):
        raise PluginError(plugin, f"factory {factory!r} is not callable")
    # a class can be checked before it is built: its methods are attributes of the class
    if isinstance(factory, type):
        missing = [m for m in REQUIRED_METHODS if not callable(getattr(factory, m, None))]
        if missing:
            raise PluginError(plugin, f"class {factory.__name__} lacks {', '.join(missing)}")
    return factory  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Registration:
    name: str
    factory: Factory
    origin: str  # "entry point module:attr" or "code"
    #: channels the connector serves (the factory's ``channels`` attribute; default: its name)
    channels: tuple[str, ...] = ()


class ConnectorRegistry:
    """Name -> factory. Thread-safe; one process-wide instance is ``default_registry``."""

    def __init__(self) -> None:
        self._entries: dict[str, Registration] = {}
        self._lock = threading.Lock()
        self._loaded = False
        self._instances: dict[tuple[str, str], Connector] = {}
        self._bindings: dict[str, tuple[str, Mapping[str, Any] | None]] = {}
        self.errors: dict[str, PluginError] = {}

    def register(
        self,
        name: str,
        factory: Any,
        *,
        origin: str = "code",
        replace: bool = False,
        channels: tuple[str, ...] | None = None,
    ) -> None:
        """Register ``factory`` under ``name``, serving ``channels`` (default: the factory's
        ``channels`` attribute, else just ``name``).

        Raises:
            PluginError: not callable / lacks the contract's methods, or the name is taken
                by another factory (unless ``replace``).
        """
        checked = _check_factory(name, factory)
        if channels is None:
            channels = tuple(getattr(factory, "channels", ()) or ()) or (name,)
        with self._lock:
            current = self._entries.get(name)
            if current is not None and not replace and current.factory is not checked:
                raise PluginError(name, f"name already registered by {current.origin}")
            self._entries[name] = Registration(name, checked, origin, channels)
            self._instances = {k: v for k, v in self._instances.items() if k[0] != name}

    def unregister(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    def load_entry_points(
        self, *, group: str = ENTRY_POINT_GROUP, strict: bool = False
    ) -> list[str]:
        """Load every entry point of ``group``; return the names registered.

        A plugin that fails to import or register is kept in ``errors`` (and raised when
        ``strict``), so one broken plugin never hides the others.
        """
        names: list[str] = []
        for ep in entry_points(group=group):
            try:
                factory = ep.load()
                self.register(ep.name, factory, origin=f"entry point {ep.value}", replace=True)
            except PluginError as exc:
                self.errors[ep.name] = exc
                if strict:
                    raise
                continue
            except Exception as exc:  # noqa: BLE001 -- a plugin may raise anything on import
                err = PluginError(
                    ep.name, f"failed to load {ep.value}: {type(exc).__name__}: {exc}"
                )
                self.errors[ep.name] = err
                if strict:
                    raise err from exc
                continue
            self.errors.pop(ep.name, None)
            names.append(ep.name)
        self._loaded = True
        return names

    @property
    def loaded(self) -> bool:
        return self._loaded

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def origin(self, name: str) -> str:
        return self._entries[name].origin

    def create(self, name: str, config: Mapping[str, Any] | None = None) -> Connector:
        """Build the connector registered as ``name`` with ``config``.

        Raises:
            PluginError: unknown name (with the known ones), the factory raised, or its
                product does not fulfil the contract.
        """
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            hint = "" if self._loaded else " (load_connectors() has not been called)"
            raise PluginError(name, f"no such connector; registered: {known}{hint}")
        try:
            obj = entry.factory(dict(config or {}))
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 -- name the plugin whatever it raised
            raise PluginError(name, f"factory failed: {type(exc).__name__}: {exc}") from exc
        return check_connector(name, obj)

    def names_for_channel(self, channel: str) -> list[str]:
        """Registered connector names serving ``channel`` (its ``channels`` or its name)."""
        with self._lock:
            return sorted(n for n, e in self._entries.items() if channel in e.channels)

    def bind_channel(
        self, channel: str, name: str, config: Mapping[str, Any] | None = None
    ) -> None:
        """Say which connector (and config) serves ``channel``; ``for_channel`` honours it
        before looking at which connectors could serve the channel. Rebinding drops the
        cached instance, so the next ``for_channel`` builds the new one."""
        with self._lock:
            self._bindings[channel] = (name, dict(config) if config is not None else None)
            self._instances = {k: v for k, v in self._instances.items() if k[1] != channel}

    def unbind_channel(self, channel: str) -> None:
        """Forget ``channel``'s binding (and its cached instance); the automatic choice applies."""
        with self._lock:
            if self._bindings.pop(channel, None) is not None:
                self._instances = {k: v for k, v in self._instances.items() if k[1] != channel}

    @contextmanager
    def bound(
        self, bindings: Mapping[str, tuple[str, Mapping[str, Any] | None] | str]
    ) -> Iterator[None]:
        """Bind channels for the duration of a ``with`` block, then restore what was bound
        before (tests and simulations must not leak bindings into the process)."""
        with self._lock:
            before = dict(self._bindings)
        try:
            for channel, value in bindings.items():
                name, config = (value, None) if isinstance(value, str) else value
                self.bind_channel(channel, name, config)
            yield
        finally:
            for channel in bindings:
                self.unbind_channel(channel)
                if channel in before:
                    self.bind_channel(channel, *before[channel])

    def bindings(self) -> dict[str, str]:
        with self._lock:
            return {ch: name for ch, (name, _) in self._bindings.items()}

    def for_channel(
        self, channel: str, config: Mapping[str, Any] | None = None, *, name: str | None = None
    ) -> Connector:
        """The (cached) connector that sends on ``channel``.

        Which one: ``name`` if given, else the channel's binding (``bind_channel``), else the
        only registered connector serving the channel. ``config`` (else the binding's) is
        used when the connector is first built. The outbox dispatcher calls this per message.

        Raises:
            PluginError: no connector (or more than one and no ``name``) serves the channel.
        """
        if name is None and channel in self._bindings:
            name, bound = self._bindings[channel]
            config = config if config is not None else bound
        if name is None:
            candidates = self.names_for_channel(channel)
            if not candidates:
                raise PluginError(
                    channel,
                    f"no connector serves channel {channel!r}; "
                    f"registered: {', '.join(self.names()) or 'none'}",
                )
            if len(candidates) > 1:
                raise PluginError(
                    channel,
                    f"several connectors serve channel {channel!r} "
                    f"({', '.join(candidates)}); configure which one",
                )
            name = candidates[0]
        key = (name, channel)
        with self._lock:
            cached = self._instances.get(key)
        if cached is not None:
            return cached
        built = self.create(name, config)
        with self._lock:
            return self._instances.setdefault(key, built)

    def instances(self) -> list[Connector]:
        """Connectors built through ``for_channel`` (for health reporting)."""
        with self._lock:
            return list(self._instances.values())


default_registry = ConnectorRegistry()


def load_bindings(
    source: str | Path | Mapping[str, Any], registry: ConnectorRegistry | None = None
) -> dict[str, str]:
    """Bind channels from a file (YAML or JSON) or a mapping of this shape::

        channels:
          email: {connector: email, config: {smtp_host: 127.0.0.1, smtp_port: 2525}}
          sms:   {connector: sms_example, config: {gateway_url: "https://gw.example/messages"}}
          chat:  {connector: memory}

    Returns channel -> connector name.

    Raises:
        PluginError: unreadable file or a malformed entry (named by its channel).
    """
    reg = registry or default_registry
    if isinstance(source, Mapping):
        data: Any = source
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PluginError(str(path), f"cannot read channel bindings: {exc}") from exc
        if len(text) > _MAX_BINDINGS_FILE:
            raise PluginError(
                str(path), f"channel bindings file larger than {_MAX_BINDINGS_FILE} bytes"
            )
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PluginError(str(path), f"channel bindings are not YAML/JSON: {exc}") from exc
    channels = data.get("channels") if isinstance(data, Mapping) else None
    if not isinstance(channels, Mapping):
        raise PluginError(
            "bindings", "expected a mapping 'channels: {<channel>: {connector: ...}}'"
        )
    bound: dict[str, str] = {}
    for channel, entry in channels.items():
        if isinstance(entry, str):
            entry = {"connector": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("connector"), str):
            raise PluginError(str(channel), "binding needs 'connector: <registered name>'")
        config = entry.get("config")
        if config is not None and not isinstance(config, Mapping):
            raise PluginError(str(channel), "binding 'config' must be a mapping")
        reg.bind_channel(str(channel), entry["connector"], config)
        bound[str(channel)] = entry["connector"]
    return bound


def bind_channel(channel: str, name: str, config: Mapping[str, Any] | None = None) -> None:
    """Bind ``channel`` to connector ``name`` (with ``config``) in the default registry."""
    default_registry.bind_channel(channel, name, config)


def unbind_channel(channel: str) -> None:
    """Forget ``channel``'s binding in the default registry."""
    default_registry.unbind_channel(channel)


def bind_channels(bindings: Mapping[str, tuple[str, Mapping[str, Any] | None] | str]) -> None:
    """Several bindings at once: ``{channel: (name, config)}`` or ``{channel: name}``."""
    for channel, value in bindings.items():
        name, config = (value, None) if isinstance(value, str) else value
        default_registry.bind_channel(channel, name, config)


def load_connectors(*, strict: bool = False) -> list[str]:
    """Load the ``careflow.connectors`` entry points into the default registry (idempotent),
    then the channel bindings file ``$CAREFLOW_CONNECTORS`` names, if any."""
    names = default_registry.load_entry_points(strict=strict)
    path = os.environ.get(BINDINGS_ENV)
    if path:
        load_bindings(path)
    return names


def register(
    name: str, factory: Any, *, replace: bool = False, channels: tuple[str, ...] | None = None
) -> None:
    """Register a factory in the default registry from code (tests, embedding)."""
    default_registry.register(name, factory, replace=replace, channels=channels)


def connector_for_channel(
    channel: str, config: Mapping[str, Any] | None = None, *, name: str | None = None
) -> Connector:
    """The cached connector sending on ``channel`` from the default registry."""
    if not default_registry.loaded:
        load_connectors()
    return default_registry.for_channel(channel, config, name=name)


def get_connector(name: str, config: Mapping[str, Any] | None = None) -> Connector:
    """Build the named connector from the default registry (loads entry points on first use)."""
    if not default_registry.loaded:
        load_connectors()
    return default_registry.create(name, config)
