"""Untrusted code in model configs is found without TensorFlow."""

from __future__ import annotations

import json
import zipfile

import pytest

from modelpack.errors import InputError
from modelpack.inputs.modelfile import detect
from modelpack.inputs.safety import check, untrusted_objects


def keras_zip(path, layers):
    config = {"module": "keras", "class_name": "Functional", "config": {"name": "m", "layers": layers}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(config))
    return path


DENSE = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense"}, "registered_name": None}
LAMBDA = {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "scale_it"}, "registered_name": None}
CUSTOM = {"module": "my_layers", "class_name": "Swish", "config": {"name": "act"}, "registered_name": "Custom>Swish"}


def test_builtin_layers_pass(tmp_path):
    check(detect(keras_zip(tmp_path / "m.keras", [DENSE])), trust_code=False, origin="r.yaml")


@pytest.mark.parametrize("layer, words", [(LAMBDA, "'scale_it' (Lambda)"), (CUSTOM, "'act' (Swish)")])
def test_code_layers_refused_with_layer_name(tmp_path, layer, words):
    mf = detect(keras_zip(tmp_path / "m.keras", [DENSE, layer]))
    with pytest.raises(InputError) as err:
        check(mf, trust_code=False, origin="r.yaml")
    assert words in err.value.message and "model.trust_code: true" in err.value.message
    check(mf, trust_code=True, origin="r.yaml")  # trusted: allowed


def test_untrusted_objects_lists_all():
    found = untrusted_objects({"config": {"layers": [DENSE, LAMBDA, CUSTOM]}})
    assert [f[0] for f in found] == ["scale_it", "act"]


def test_detect_by_content_not_extension(tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    with pytest.raises(InputError, match="not a Keras model"):
        detect(fake)
    h5 = tmp_path / "weights.bin"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 8)
    assert detect(h5).format == "tf-keras-h5"
    assert detect(keras_zip(tmp_path / "m.zip", [DENSE])).format == "keras3"


def test_onnx_variants_of_a_model_over_two_gib_are_refused_before_any_work(tmp_path):
    import pytest

    from modelpack.errors import InputError
    from modelpack.inputs.modelfile import ModelFile
    from modelpack.inputs.precheck import _check_onnx_size
    from modelpack.recipe.models import Recipe

    (tmp_path / "m.keras").write_bytes(b"PK")
    recipe = Recipe.model_validate({"name": "big", "model": {"path": str(tmp_path / "m.keras")}, "data": {"synthetic": True},
                                    "optimize": {"variants": ["tflite-int8", "onnx-fp32", "onnx-int8"]}})
    huge = ModelFile(tmp_path / "m.keras", "keras3", "0" * 64, 3 * 1024**3)
    with pytest.raises(InputError, match=r"onnx-fp32, onnx-int8.*2 GiB.*Use the TFLite variants"):
        _check_onnx_size(recipe, huge, "recipe.yaml")
    tflite_only = recipe.model_copy(update={"optimize": recipe.optimize.model_copy(update={"variants": ["tflite-int8"]})})
    _check_onnx_size(tflite_only, huge, "recipe.yaml")  # TFLite only: accepted
