"""Error hierarchy and the one place where errors map to exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUDGET = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_NO_VARIANT = 4  # the build ran, but no variant converted and measured: nothing to select or package


class ModelpackError(Exception):
    """A known failure with a message meant for the user."""

    exit_code = EXIT_INTERNAL
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0])


class RecipeError(ModelpackError):
    """The recipe, or a file it names, is invalid. Nothing was built."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, problems: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.problems = problems or []


class UsageError(ModelpackError):
    """The command was used wrongly (an existing file, a wrong option)."""

    exit_code = EXIT_USAGE


class InputError(RecipeError):
    """A model or data file named by the recipe cannot be used as given."""


class StepFailedError(ModelpackError):
    """A pipeline step failed in a way that stops the build."""

    hint = "Run again with --debug for the full log of the failing step."


class TargetError(ModelpackError):
    """An artifact could not be written for a target."""


class PackageLimitError(TargetError):
    """A target's package is over a hard platform limit (Lambda's 262,144,000 bytes unzipped, say). The build
    still writes its output and report: the target shows as a failed `fits <target>` budget, exit 1."""

    def __init__(self, message: str, *, target: str, limit_bytes: int, actual_bytes: int, **kw):
        super().__init__(message, **kw)
        self.target, self.limit_bytes, self.actual_bytes = target, limit_bytes, actual_bytes


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM). A BaseException, like KeyboardInterrupt, so no `except
    Exception` swallows it, while every `with` block and `finally` on the way out still cleans up."""

    exit_code = 128 + 15


class StepError(ValueError):
    """Raised inside the worker process by a step, for a failure the user can act on; its message names the
    layer or input and the fix, and is shown whole. The worker records the class name with the step's result,
    and the build matches it by class (`StepResult.is_error(PruneError)`) to turn it into a recipe error."""


class UnservableInputError(StepError):
    """A model input no serving runtime can take (strings, ragged or sparse tensors); names the input and the fix."""


class PortError(StepError):
    """Keras 3 cannot stand in for the tf-keras model; the message says why."""


class PruneError(StepError):
    """The model cannot be pruned as asked; the message names the layer and the fix."""


class DistillError(StepError):
    """No student can be trained as the recipe asks; the message names the layer or file and the fix."""


class SplitError(StepError):
    """The model cannot be split as asked; the message names the layer and the fix."""


class ModelLoadError(StepError):
    """The model does not load as the recipe says (a custom class not found, code not trusted); the message names
    the class and the recipe fields that fix it."""


class PrecisionError(StepError):
    """The float32 copy of a mixed-precision model cannot be made or does not compute what the model does."""


class Int16Error(StepError):
    """int16 activations with int8 weights (16x8) cannot be had for this model: the converter has no 16x8 form of
    an op, or the serving runtime (LiteRT) has no int16 kernel for it; the message names the op and the fix."""


class HandlerRaisedError(ModelpackError):
    """`modelpack invoke` ran the package, but its handler raised (the responses are printed).

    Like a failed budget, the command did its work and what it checked did not pass, so it shares that code.
    """

    exit_code = EXIT_BUDGET
    hint = "The printed response carries the error type, message and stack trace of the handler."



class HandlerFailedError(ModelpackError):
    """`modelpack invoke` ran the package, and its handler answered a 4xx or 5xx status (the responses are
    printed). The request or the package is wrong, so the command shares the code of a failed check."""

    exit_code = EXIT_BUDGET
    hint = "The printed responses carry the handler's status and error message."
