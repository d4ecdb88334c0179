"""Every exception enact raises, in one place.

The hierarchy::

    EnactError
    ├── FieldTypeError (TypeError)        a value enact cannot store
    │   └── MissingWrapperError           a type with no TypeWrapper
    ├── SerializationError (ValueError)   encoding failed (cycles, bad keys)
    │   └── DeserializationError          stored bytes that do not decode
    ├── ConfigError (ValueError)          a malformed store URL or setting
    ├── StoreError                        the storage layer failed
    │   ├── RefError                      a ref that cannot be checked out
    │   │   ├── ObjectMissing (KeyError)  no object stored for the digest
    │   │   ├── ObjectCorrupt             the stored bytes do not hash to the digest
    │   │   └── InvalidRef (AssertionError)  a ref built from something not a str
    │   ├── StoreUnavailable              a server could not be reached
    │   ├── ConflictError                 a compare-and-set lost a race
    │   ├── GcError                       gc refused to delete (damage, a short grace)
    │   └── NoActiveStore (NoActiveContext)  no store is active and none is remembered
    ├── RegistryError                     registration and type lookup
    │   ├── InvalidRegistration (TypeError)  a class or function enact cannot register
    │   └── UnregisteredResource          stored data names an unknown type
    ├── InvocationError                   a call could not be run, recorded or replayed
    │   ├── ReplayError                   a replay diverged from its record
    │   │   └── UnreplayableCall (UnregisteredResource)  its function cannot be loaded
    │   ├── InputChanged                  a call mutated its own input
    │   ├── IncompleteSubinvocationError  a child outlived its parent
    │   ├── InvocationBuildFailure        a call's outcome could not be recorded
    │   └── InvokableTypeError (TypeError)  an input or output of the wrong type
    ├── BudgetExhausted                   a search rollout drew more than its share
    ├── InputError                        input requests and answers
    │   ├── InputRequestOutsideInvocation
    │   ├── RequestedTypeUndetermined (also an InvocationError)
    │   ├── AnswerTypeError (TypeError)   an answer of the wrong type
    │   └── UnknownInputRequest (KeyError)
    │       └── RequestNotPending (ConflictError)  answered and used, or withdrawn
    ├── ContextError                      context classes (enact.contexts)
    │   ├── ContextTypeError              the current object is of a sibling class
    │   ├── NoActiveContext               nothing current (NoActiveStore is one)
    │   └── InvalidContextRegistration (AssertionError)
    └── FlowError                         flows run by the Celery workers
        ├── UnknownFlow (KeyError)
        ├── FlowFailed                    the flow ended with an exception
        │   └── FlowCancelled             the flow was cancelled
        ├── WorkerError                   the workers could not run what was sent
        ├── FlowWaiting                   the flow waits for input; no result yet
        └── FlowTimeout (TimeoutError)    waiting for a flow took too long

Where users expect a built-in exception, ours inherit from it too, so both
``except enact.FieldTypeError`` and ``except TypeError`` work.
"""

from __future__ import annotations


class EnactError(Exception):
    """Base of every error enact raises on purpose."""


class FieldTypeError(EnactError, TypeError):
    """A value of a type enact cannot store was found in a field."""


class MissingWrapperError(FieldTypeError):
    """A type (or a value's type) has no registered ``TypeWrapper``."""


class SerializationError(EnactError, ValueError):
    """A value could not be encoded."""


class CycleError(SerializationError):
    """A value refers back to itself; content addressing needs a DAG."""


class DeserializationError(SerializationError):
    """Stored bytes could not be decoded into values."""


class ConfigError(EnactError, ValueError):
    """A store URL or configuration setting is malformed."""


class StoreError(EnactError):
    """The storage layer failed."""


class RefError(StoreError):
    """A reference could not be resolved to a valid object."""


class ObjectMissing(RefError, KeyError):
    """No object is stored under the digest."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that.
        return str(self.args[0]) if self.args else ""


class ObjectCorrupt(RefError):
    """Stored bytes do not hash to the digest they are stored under."""


class InvalidRef(RefError, AssertionError):
    """A ``Ref`` was built from something that is not a string digest.

    Also an ``AssertionError``, which is what enact 0.4 raised here.
    """


class StoreUnavailable(StoreError):
    """A storage server could not be reached (after retries)."""


class ConflictError(StoreError):
    """A compare-and-set update found a different value than expected."""


class GcError(StoreError):
    """Garbage collection stopped before deleting anything, and says why."""


class RegistryError(EnactError):
    """Registration failed, or a registered type could not be found."""


class InvalidRegistration(RegistryError, TypeError):
    """A class or function that cannot be registered as it is (e.g. a bad ``call``)."""


class UnregisteredResource(RegistryError):
    """Stored data names a type that is not registered in this process."""


class InvocationError(EnactError):
    """A call could not be run, recorded or replayed as asked."""


class ReplayError(InvocationError):
    """A replay diverged from the recorded execution."""


class UnreplayableCall(ReplayError, UnregisteredResource):
    """A recorded call cannot run again here: its function or type is not registered."""


class InputChanged(InvocationError):
    """A call changed the value of its own input while running."""


class IncompleteSubinvocationError(InvocationError):
    """A child call was still running when its parent returned."""


class InvocationBuildFailure(InvocationError):
    """The outcome of a call could not be recorded (say, it raised an unregistered
    ``ExceptionResource``); the cause is chained."""


class InvokableTypeError(InvocationError, TypeError):
    """A typed invokable got an input, or produced an output, of the wrong type."""


class BudgetExhausted(EnactError):
    """A search rollout tried to draw more samples than the search allotted to it."""


class InputError(EnactError):
    """Input requests and their answers."""


class InputRequestOutsideInvocation(InputError):
    """``request_input`` was called outside a tracked invocation."""


class RequestedTypeUndetermined(InputError, InvocationError):
    """No type could be determined for an input request."""


class AnswerTypeError(InputError, TypeError):
    """An answer does not match the type its input request asked for."""


class UnknownInputRequest(InputError, KeyError):
    """No pending input request has the given id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RequestNotPending(UnknownInputRequest, ConflictError):
    """The request was asked, but is pending no more: its answer was used, or its flow
    was cancelled. A second answer that lost a race gets this too."""


class ContextError(EnactError):
    """A context class (``enact.contexts``) was used in a way it does not allow."""


class ContextTypeError(ContextError):
    """The current object of a shared context slot is of a sibling class."""


class NoActiveContext(ContextError):
    """No object of a context class is current."""


class InvalidContextRegistration(ContextError, AssertionError):
    """A context class registered twice, or to a superclass it cannot share."""


class NoActiveStore(StoreError, NoActiveContext):
    """No store is active, and the object used remembers none."""


class FlowError(EnactError):
    """A flow run by the Celery workers could not give what was asked."""


class UnknownFlow(FlowError, KeyError):
    """No flow has the given id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class FlowFailed(FlowError):
    """The flow ended with an exception (its message is the recorded error)."""


class FlowCancelled(FlowFailed):
    """The flow was cancelled (``enact.worker.cancel``); it has no result."""


class WorkerError(FlowError):
    """The workers could not run what was sent (say, a function they do not import);
    the message is the workers' own."""


class FlowWaiting(FlowError):
    """The flow is waiting for input, so it has no result yet."""


class FlowTimeout(FlowError, TimeoutError):
    """A flow did not reach the awaited state in time."""
