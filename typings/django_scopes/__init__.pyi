# Types for django-scopes 2.1.0, which ships none (no py.typed). Only what ketaclinic uses.
# ScopedManager builds its manager class inside the function at runtime, so django-stubs'
# plugin cannot name it and types `objects` as Django's Manager of the model (see pyproject's
# [tool.mypy] note on django-manager-missing).
from contextlib import _GeneratorContextManager
from typing import Any, TypeVar, overload

from django.db import models

_M = TypeVar("_M", bound=models.Manager[Any])

version: str

class ScopeError(Exception): ...

@overload
def ScopedManager(**scopes: str) -> models.Manager[Any]: ...
@overload
def ScopedManager(_manager_class: type[_M], **scopes: str) -> _M: ...
def scope(**scope_kwargs: Any) -> _GeneratorContextManager[None]: ...
def scopes_disabled() -> _GeneratorContextManager[None]: ...
def get_scope() -> dict[str, Any]: ...
