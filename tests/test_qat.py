"""Pruning-preserving QAT: layer plan, zeros survive fine-tuning and int8 conversion, save/reload."""

from __future__ import annotations

import numpy as np
import pytest

from converters.tflite import convert_to_tflite
from edge_rec.compress.pruning import (
    main_weight,
    prune_student,
    pruning_callbacks,
    sparsity_report,
    strip_pruning,
)
from edge_rec.compress.qat import (
    is_quantization_aware,
    load_qat_model,
    quantization_plan,
    quantize_student,
    save_qat_model,
)
from edge_rec.config import FitConfig, PruneConfig
from edge_rec.keras_shim import keras
from edge_rec.models import CUSTOM_OBJECTS, build_student
from tests import tiny_student


@pytest.fixture(scope="module")
def pruned_and_qat():
    cfg = PruneConfig(target_sparsity=0.5, frequency=2, min_weights=0, fit=FitConfig(epochs=2, batch_size=64))
    wrapped = prune_student(tiny_student.build_serving_student(seed=0), cfg, steps_per_epoch=8)
    tiny_student.fit_last_position(wrapped, epochs=2, callbacks=pruning_callbacks())
    pruned = strip_pruning(wrapped)
    qat = quantize_student(pruned)
    tiny_student.fit_last_position(qat, epochs=2, seed=1)
    return pruned, qat


def test_plan_annotates_dense_only_and_no_ops_the_custom_pooling():
    plan = quantization_plan(tiny_student.build_serving_student())
    assert plan["history"] == plan["item_embedding"] == plan["mask"] == "skip"
    assert plan["pooling"] == "no-op"
    assert plan["hidden"] == plan["logits"] == "annotate"


def test_qat_keeps_every_pruned_zero_through_fine_tuning(pruned_and_qat):
    pruned, qat = pruned_and_qat
    assert is_quantization_aware(qat) and not is_quantization_aware(pruned)
    for name in ("hidden", "logits"):
        before = pruned.get_layer(name).kernel.numpy()
        after = main_weight(qat.get_layer(f"quant_{name}"))
        zeros = before == 0.0
        assert zeros.mean() == pytest.approx(0.5, abs=0.02)
        assert np.all(after[zeros] == 0.0), name
        assert not np.allclose(after[~zeros], before[~zeros]), "QAT fine-tuning did not train " + name
    assert sparsity_report(qat)["logits"] >= sparsity_report(pruned)["logits"]


def test_pruned_zeros_survive_int8_conversion(pruned_and_qat):
    from ai_edge_litert.interpreter import Interpreter

    pruned, qat = pruned_and_qat
    histories, _ = tiny_student.clustered_histories(32, seed=3)
    data = convert_to_tflite(
        qat, "int8", history_length=tiny_student.HISTORY, top_k=10, representative_histories=histories
    )
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    catalog = tiny_student.CATALOG
    # the int8 logits kernel: the one int8 constant of shape [C, H] (TFLite stores it transposed)
    kernels = []
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] == np.int8 and tuple(detail["shape"]) == (catalog, 16):
            try:
                kernels.append(interpreter.get_tensor(detail["index"]))
            except ValueError:
                continue
    assert kernels, "no int8 [C, H] kernel found in the converted model"
    zero_fractions = [float(np.mean(kernel == 0)) for kernel in kernels]
    assert max(zero_fractions) >= 0.5 - 0.02
    pruned_zeros = pruned.get_layer("logits").kernel.numpy().T == 0.0
    assert any(np.all(kernel[pruned_zeros] == 0) for kernel in kernels)


@pytest.mark.parametrize("name", ["qat_savedmodel", "qat.h5"])
def test_qat_model_saves_and_reloads(pruned_and_qat, tmp_path, name):
    _pruned, qat = pruned_and_qat
    path = save_qat_model(qat, tmp_path / name, CUSTOM_OBJECTS)
    reloaded = load_qat_model(path, CUSTOM_OBJECTS)
    assert is_quantization_aware(reloaded)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no staging left behind
    histories, _ = tiny_student.clustered_histories(8, seed=4)
    np.testing.assert_allclose(
        qat.predict(histories, verbose=0)[0], reloaded.predict(histories, verbose=0)[0], atol=1e-5
    )


def test_qat_model_refuses_keras_v3_format(pruned_and_qat, tmp_path):
    with pytest.raises(ValueError, match=r"\.keras format"):
        save_qat_model(pruned_and_qat[1], tmp_path / "qat.keras")


def test_qat_sequence_weights_transfer_to_qat_serving_model():
    sequence = build_student(tiny_student.STUDENT_CFG, tiny_student.CATALOG, tiny_student.HISTORY, sequence=True)
    serving = build_student(tiny_student.STUDENT_CFG, tiny_student.CATALOG, tiny_student.HISTORY, sequence=False)
    qat_sequence = quantize_student(sequence)
    qat_serving = quantize_student(serving)
    qat_serving.set_weights(qat_sequence.get_weights())
    histories, _ = tiny_student.clustered_histories(8, seed=6)
    last = qat_sequence.predict(histories, verbose=0)[0][:, -1, :]
    np.testing.assert_allclose(qat_serving.predict(histories, verbose=0)[0], last, atol=1e-4)


def test_quantize_student_refuses_a_model_without_dense():
    ids = keras.Input((3,), dtype="int32", name="history")
    model = keras.Model(ids, keras.layers.Embedding(5, 2)(ids))
    with pytest.raises(ValueError, match="no layer TF-MOT can quantize"):
        quantize_student(model)
