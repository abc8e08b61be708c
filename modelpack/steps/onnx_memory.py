"""ONNX conversion within bounded memory (worker process only: imports TensorFlow and tf2onnx).

Two things make tf2onnx hold many copies of a model's weights, measured on a 103 MB Dense model (7.9 GB peak):
- Freezing through `convert_variables_to_constants_v2` and grappler copies the weights at every hop between
  Python and TensorFlow's C++ (about 20 copies at the peak). `convert_large` freezes without building a new
  function, keeps the big constants out of the graph TensorFlow imports (tf2onnx's own large-model route) and
  drops each intermediate as soon as the next holds the weights: about 4 copies at the peak.
- After each of its graph optimizers tf2onnx rewrites every node's NodeProto; with protobuf's upb backend the
  replaced attributes stay in the node's arena until the node dies, so every optimizer pass leaves one more copy
  of every weight behind (24 passes here). `bounded_optimizers` gives each rewrite a fresh NodeProto, so the old
  one is freed, and collects the graph copies tf2onnx makes to roll back a failed optimizer as soon as they are
  garbage.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CALLS = ("StatefulPartitionedCall", "PartitionedCall")  # calls of library functions in a TensorFlow graph


@contextmanager
def bounded_optimizers(collect: bool = True) -> Iterator[None]:
    """tf2onnx's graph rewrites with memory that does not grow with the number of optimizer passes; `collect`
    also runs the garbage collector after each pass (a fraction of a second each: worth it for big models)."""
    from onnx import NodeProto
    from tf2onnx import optimizer
    from tf2onnx.graph import Node

    original_update = Node.update_proto

    def update_proto(self, external_tensor_storage=None):
        old = self._op
        self._op = NodeProto(name=old.name, op_type=old.op_type, domain=old.domain, doc_string=old.doc_string)
        original_update(self, external_tensor_storage)

    originals = {cls: cls.optimize for cls in set(optimizer._get_optimizers().values())}

    def collecting(optimize):
        def run(self, graph, iteration):
            result = optimize(self, graph, iteration)
            gc.collect()  # the deep copy made to roll back a failed optimizer, and what it replaced
            return result
        return run

    Node.update_proto = update_proto
    for cls, optimize in originals.items():
        cls.optimize = collecting(optimize) if collect else optimize
    try:
        yield
    finally:
        Node.update_proto = original_update
        for cls, optimize in originals.items():
            cls.optimize = optimize


class ReadTwice(dict):
    """tf2onnx's big constants by node name, each let go after its second read: tf2onnx reads a constant once to
    fold what it can and once to make its ONNX tensor, so the weights do not stay alive twice (as bytes here and as
    ONNX tensors) while the rest of the graph converts."""

    def __init__(self, values: dict) -> None:
        super().__init__(values)
        self._reads: dict[str, int] = {}

    def __getitem__(self, key: str):
        value = super().__getitem__(key)
        self._reads[key] = self._reads.get(key, 0) + 1
        if self._reads[key] >= 2:
            del self[key]
        return value


def convert_large(model: Callable[[], Any], inputs: list[str], outputs: list[str], opset: int,
                  rename: dict[str, str], release: Callable[[], None] | None = None) -> Any | None:
    """An ONNX model proto of the serving function of `model()`, converted so that few copies of its weights are
    alive at once; None when this route does not apply (the frozen graph keeps calls of library functions that
    only grappler's inlining removes, or one of tf2onnx's graph optimizers failed) and the usual route must
    convert it.

    The big constants are taken out of the frozen graph before TensorFlow imports it and handed to tf2onnx by
    node name, as its large-model route does; unlike that route the weights end up in the model itself (a
    normal single .onnx file). Each intermediate is dropped as soon as the next one holds the weights, the
    model itself (through `release`) as soon as it is frozen.
    """
    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader
    from tf2onnx.tf_utils import compress_graph_def
    from tf2onnx.tfonnx import process_tf_graph


    func = model().serve.get_concrete_function()
    name = func.name
    graph_def = tf_loader.from_function(func, inputs, outputs, large_model=True)
    del func
    if any(n.op in CALLS for n in graph_def.node):
        return None
    if release is not None:
        release()
    const_values = compress_graph_def(graph_def)
    if not graph_def.library.function:  # a function body could read a same-named constant: keep them all then
        const_values = ReadTwice(const_values)
    with tf.Graph().as_default() as tf_graph:
        tf.import_graph_def(graph_def, name="")
        del graph_def  # its arena still held every weight
        graph = process_tf_graph(tf_graph, continue_on_error=True, opset=opset, input_names=inputs,
                                 output_names=outputs, const_node_values=const_values, tensors_to_rename=rename)
    del const_values
    try:
        # No copy of the graph to roll back to: a failing optimizer sends the model down the usual route.
        graph = optimizer.optimize_graph(graph, catch_errors=False)
    except Exception:  # noqa: BLE001 - any optimizer failure: the usual route converts it, as it always did
        return None
    proto = model_without_third_copy(graph, f"converted from {name}")
    del graph
    gc.collect()
    return proto


def model_without_third_copy(graph: Any, doc: str) -> Any:
    """`graph.make_model(doc)`, with the graph's constants let go once the GraphProto holds them: tf2onnx then
    copies that GraphProto into the ModelProto, which would otherwise make three copies of every weight at once."""
    from onnx import NodeProto

    make_graph = graph.make_graph

    def make_graph_then_drop_constants(*args, **kwargs):
        proto = make_graph(*args, **kwargs)
        for node in graph.get_nodes():
            if node.type == "Const":  # its value is in proto.initializer now; nothing reads the node again
                node._attr = {}
                node._op = NodeProto(name=node.name, op_type=node.type)
        gc.collect()
        return proto

    graph.make_graph = make_graph_then_drop_constants
    return graph.make_model(doc)
