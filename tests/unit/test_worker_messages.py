"""A failed variant's error is one line a user can act on: the converter's first diagnostic plus what to do."""

from __future__ import annotations

from modelpack.keras_io import UnservableInputError
from modelpack.worker import MAX_MESSAGE, first_message


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
