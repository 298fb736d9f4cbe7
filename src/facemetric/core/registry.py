"""One registry per kind of component: a config names a builder, the registry finds and checks it.

``MODELS = Registry("model", injected=("embedding_dim", "in_channels", "input_size"))``, then
``@MODELS.register("iresnet18")`` on a class or function. A config gives the name and the
options; :meth:`Registry.check_options` compares the options with the builder's signature
(unknown keys, and types where the builder annotates them) before anything is built, and
:meth:`Registry.build` turns the builder's own ``ValueError`` (a value out of range) into a
:class:`~facemetric.core.errors.ConfigError` naming where the options came from. Arguments in
``injected`` are supplied by facemetric at build time (the class count, the image size) and
are not options.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUndefinedAnnotation

from facemetric.core.errors import ConfigError, UnknownNameError

T = TypeVar("T", bound=Callable[..., Any])


def _target(builder: Callable[..., Any]) -> Callable[..., Any]:
    """What a builder's options really go to: a function that only forwards ``**options`` to the
    class it returns (``def iresnet18(**cfg) -> IResNet``) is checked against that class."""
    if inspect.isclass(builder):
        return builder
    params = inspect.signature(builder).parameters.values()
    if all(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params):
        try:
            returned = typing.get_type_hints(builder).get("return")
        except Exception:
            returned = None
        if inspect.isclass(returned):
            return returned
    return builder


def _init(target: Callable[..., Any]) -> Callable[..., Any]:
    return target.__init__ if inspect.isclass(target) else target


_BINDING = ("got multiple values for keyword argument", "got an unexpected keyword argument")


class Registry(Generic[T]):
    """Builders registered under names; ``kind`` ("model", "loss" ...) words the errors."""

    def __init__(self, kind: str, injected: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.injected = frozenset(injected)
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a builder (function or class) under ``name``."""

        def wrap(builder: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = builder
            return builder

        return wrap

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> T:
        """The builder registered as ``name``, or :class:`UnknownNameError` listing the known names."""
        if name not in self._items:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._items[name]

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The options ``name`` takes from a config: its keyword parameters minus the injected ones."""
        signature = inspect.signature(_target(self.get(name)))
        return {
            p.name: p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in self.injected
        }

    def accepts_any(self, name: str) -> bool:
        """True when the builder takes ``**kwargs`` (its options cannot be checked by name)."""
        params = inspect.signature(_target(self.get(name))).parameters.values()
        return any(p.kind is p.VAR_KEYWORD for p in params)

    def check_options(self, name: str, options: Mapping[str, Any], where: str) -> None:
        """Refuse options ``name`` does not take, or of the wrong type, naming ``where`` they came from."""
        params = self.parameters(name)
        if not self.accepts_any(name):
            unknown = sorted(set(options) - set(params))
            if unknown:
                allowed = ", ".join(params) or "none"
                raise ConfigError(
                    f"{where}: {self.kind} {name!r} has no option {', '.join(map(repr, unknown))}; "
                    f"its options: {allowed}"
                )
        hints = self._hints(name)
        for key, value in options.items():
            annotation = hints.get(key)
            if annotation is None:
                continue
            if isinstance(value, list) and typing.get_origin(annotation) is tuple:
                value = tuple(value)  # YAML has no tuples
            try:
                TypeAdapter(annotation).validate_python(value, strict=True)
            except ValidationError as exc:
                raise ConfigError(
                    f"{where}.{key}: {value!r} is not valid for {self.kind} {name!r} "
                    f"({exc.errors()[0]['msg']}; expected {_type_name(annotation)})"
                ) from None
            except (PydanticSchemaGenerationError, PydanticUndefinedAnnotation):
                continue  # a type pydantic cannot check (a module, a miner object): the builder checks it

    def _hints(self, name: str) -> dict[str, Any]:
        try:
            return typing.get_type_hints(_init(_target(self.get(name))))
        except Exception:  # an annotation that cannot be resolved: options are checked by name only
            return {}

    def build(self, name: str, *args: Any, where: str | None = None, **kwargs: Any) -> Any:
        """``builder(*args, **kwargs)``; a ``ValueError`` it raises becomes a :class:`ConfigError` at ``where``."""
        builder = self.get(name)
        try:
            return builder(*args, **kwargs)
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{where or self.kind}: {self.kind} {name!r}: {exc}") from exc
        except TypeError as exc:  # an option a variant fixes itself (iresnet18's layers), or one it lacks
            if not any(text in str(exc) for text in _BINDING):
                raise
            raise ConfigError(f"{where or self.kind}: {self.kind} {name!r} {str(exc).split(') ', 1)[-1]}") from exc


def discover(package: str, path: Iterable[str]) -> list[str]:
    """Import every module of ``package`` whose name does not start with ``_``, so that the components
    it defines register themselves (``@register_model`` ...): facemetric's one plugin discovery
    mechanism. Each plugin package's ``__init__`` ends with ``discover(__name__, __path__)``, so a new
    backbone, loss, miner, callback or store is one new file in its package and nothing else.
    Returns the names of the modules imported."""
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")
