"""The checkers of notebook 04 compression: each passes a right answer and rejects typical wrong ones with an
explanation."""
import numpy as np
import pytest

from mlcourse import checks


def _converter(io_type="int8", ops=True, representative=True):
    def convert(model, images):
        import tensorflow as tf

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if representative:
            conv.representative_dataset = lambda: ([images[i:i + 1].astype(np.float32)] for i in range(len(images)))
        if ops:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type:
            conv.inference_input_type = conv.inference_output_type = getattr(tf, io_type)
        return conv.convert()

    return convert


def test_int8_converter_checker():
    checks.check_int8_converter(_converter())
    with pytest.raises(AssertionError, match="inference_input_type = tf.int8"):
        checks.check_int8_converter(_converter(io_type="uint8"))
    with pytest.raises(AssertionError, match="inference_input_type"):
        checks.check_int8_converter(_converter(io_type=None))
    with pytest.raises(AssertionError, match="converter.convert"):
        checks.check_int8_converter(lambda model, images: None)


def _pruner(strip=True, callback=True):
    def prune(model, x, y, target_sparsity, epochs):
        import tensorflow_model_optimization as tfmot

        steps = int(np.ceil(len(x) / 128)) * epochs
        schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, target_sparsity, begin_step=0, end_step=steps,
                                                       frequency=max(1, steps // 4))
        import tf_keras

        def wrap(layer):  # Rescaling is not prunable: wrap the Conv2D and Dense layers only
            if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)):
                return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
            return layer

        pruned = tf_keras.models.clone_model(model, clone_function=wrap)
        pruned.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        cbs = [tfmot.sparsity.keras.UpdatePruningStep()] if callback else []
        pruned.fit(x, y, epochs=epochs, batch_size=128, verbose=0, callbacks=cbs)
        return tfmot.sparsity.keras.strip_pruning(pruned) if strip else pruned

    return prune


def test_pruning_loop_checker():
    checks.check_pruning_loop(_pruner())
    with pytest.raises(AssertionError, match="strip_pruning"):
        checks.check_pruning_loop(_pruner(strip=False))
    with pytest.raises(AssertionError, match="Return the pruned"):
        checks.check_pruning_loop(lambda *a: None)


def test_int8_checker():
    def right(w):
        w = np.asarray(w, np.float32)
        s = float(np.abs(w).max()) / 127
        return np.clip(np.round(w / s), -127, 127).astype(np.int8), s

    checks.check_int8_quantize(right)

    def truncating(w):
        q, s = right(w)
        return np.trunc(np.asarray(w) / s).astype(np.int8), s

    with pytest.raises(AssertionError, match="round"):
        checks.check_int8_quantize(truncating)
    with pytest.raises(AssertionError, match="int8"):
        checks.check_int8_quantize(lambda w: (np.round(np.asarray(w) / (np.abs(w).max() / 127)), np.abs(w).max() / 127))


def test_low_rank_checker():
    def right(W, r):
        U, S, Vt = np.linalg.svd(W, full_matrices=False)
        return U[:, :r] * S[:r], Vt[:r]

    checks.check_low_rank(right)

    def smallest_values(W, r):
        U, S, Vt = np.linalg.svd(W, full_matrices=False)
        return U[:, -r:] * S[-r:], Vt[-r:]

    with pytest.raises(AssertionError, match="largest"):
        checks.check_low_rank(smallest_values)
