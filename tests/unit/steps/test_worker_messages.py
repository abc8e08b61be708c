"""A failed variant's error is one line a user can act on: the converter's first diagnostic plus what to do."""

from __future__ import annotations

from modelpack.errors import UnservableInputError
from modelpack.steps.worker import MAX_MESSAGE, first_message


class ConverterError(Exception):
    """Stands in for TensorFlow's converter error type (only its name and text matter here)."""


MLIR = (
    '<unknown>:0: error: loc(callsite(fused["TensorListReserve:", "model/lstm/TensorListReserve@__inference_serve_9"] '
    'at fused["StatefulPartitionedCall:", "StatefulPartitionedCall@__inference_signature_wrapper_7"])): '
    "'tf.TensorListReserve' op requires element_shape to be static during TF Lite transformation pass\n"
    '<unknown>:0: note: loc(fused["StatefulPartitionedCall:", "x"]): called from\n'
    "<unknown>:0: error: Lowering tensor list ops is failed. Please consider using Select TF ops\n"
)


def test_mlir_diagnostic_is_reduced_to_its_text_with_advice():
    message = first_message(ConverterError(MLIR))
    assert message.startswith("ConverterError: 'tf.TensorListReserve' op requires element_shape to be static")
    assert "loc(" not in message and "\n" not in message
    assert "fixed sequence length" in message and "ONNX variant" in message


def test_unknown_error_keeps_its_first_line_only():
    assert first_message(ValueError("first line\nsecond line")) == "ValueError: first line"


def test_long_tool_errors_are_cut_but_modelpack_messages_are_kept_whole():
    long = "x" * (MAX_MESSAGE + 50)
    assert len(first_message(RuntimeError(long))) <= len("RuntimeError: ") + MAX_MESSAGE
    assert first_message(UnservableInputError(long)).endswith(long)


# What TensorFlow raises when a Keras 3 model fails while a tf.function traces it: the inner error's frames are
# part of the message, and one of them names a function called `error_handler`.
TRACED = (
    "in user code:\n\n"
    '    File "/venv/lib/python3.11/site-packages/modelpack/inputs/keras_io.py", line 118, in serve  *\n'
    "        out = model(list(args), training=False)\n"
    '    File "/venv/lib/python3.11/site-packages/keras/src/utils/traceback_utils.py", line 122, in error_handler  **\n'
    "        raise e.with_traceback(filtered_tb) from None\n"
    '    File "/venv/lib/python3.11/site-packages/keras/src/models/functional.py", line 258, in _maybe_warn\n'
    "        raise ValueError(msg)\n\n"
    "    ValueError: Exception encountered when calling Functional.call().\n    \n"
    "    \x1b[1mThe structure of `inputs` doesn't match the expected structure.\n"
    "    Expected: {'num': 'num', 'cat': 'cat'}\x1b[0m\n    \n"
    "    Arguments received by Functional.call():\n      • training=False\n"
)


def test_traced_error_quotes_the_inner_exception_never_a_frame():
    message = first_message(ValueError(TRACED))
    assert message == ("ValueError: Exception encountered when calling Functional.call(): "
                       "The structure of `inputs` doesn't match the expected structure.")
    assert 'File "' not in message and "line 122" not in message and "\x1b" not in message


def test_traced_error_takes_the_innermost_exception_and_its_type():
    text = ('Traceback (most recent call last):\n  File "a.py", line 3, in f\n    g()\n'
            "KeyError: 'outer'\n\nDuring handling of the above exception, another exception occurred:\n\n"
            '  File "b.py", line 9, in g\n    raise TypeError("no")\nTypeError: layer dense expects 2 inputs\n')
    assert first_message(RuntimeError(text)) == "TypeError: layer dense expects 2 inputs"


def test_frames_without_an_exception_line_fall_back_to_the_remaining_text():
    text = 'File "x.py", line 1, in error_handler\n    call()\nthe converter stopped: not supported op Foo\n'
    assert first_message(RuntimeError(text)) == "RuntimeError: the converter stopped: not supported op Foo"
