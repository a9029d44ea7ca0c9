"""The checkers of notebook 05 compression: each passes a right answer and rejects typical wrong ones with an
explanation."""
import numpy as np
import pytest

from mlcourse import checks


def _converter(io_type="int8", ops=True, representative=True, transform=lambda images: images):
    def convert(model, images):
        import tensorflow as tf

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if representative:
            cal = transform(images).astype(np.float32)
            conv.representative_dataset = lambda: ([cal[i:i + 1]] for i in range(len(cal)))
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


def test_int8_converter_rejects_dynamic_range_and_float_io():
    # dynamic range only: no representative dataset, nothing else set
    with pytest.raises(AssertionError, match="representative_dataset.*dynamic"):
        checks.check_int8_converter(_converter(io_type=None, ops=False, representative=False))
    # int8 input/output asked for but no representative dataset: the converter refuses, the checker says why
    with pytest.raises(AssertionError, match="raised.*representative_dataset"):
        checks.check_int8_converter(_converter(representative=False))
    # int8 inside, float input and output: the interface an integer-only accelerator cannot take
    with pytest.raises(AssertionError, match="input is float32.*inference_input_type = tf.int8"):
        checks.check_int8_converter(_converter(io_type=None))


def test_int8_converter_rejects_a_calibration_unlike_the_input():
    with pytest.raises(AssertionError, match="not divided by 255"):
        checks.check_int8_converter(_converter(transform=lambda images: images / 255.0))
    rng = np.random.default_rng(0)
    with pytest.raises(AssertionError, match="random noise"):
        checks.check_int8_converter(_converter(transform=lambda images: rng.random(images.shape)))


def _pruner(strip=True, callback=True, schedule_kind="polynomial", final=None, fresh=False, learning_rate=None):
    def prune(model, x, y, target_sparsity, epochs):
        import tensorflow_model_optimization as tfmot
        import tf_keras

        from mlcourse import models

        steps = int(np.ceil(len(x) / 128)) * epochs
        s = target_sparsity if final is None else final
        if schedule_kind == "constant":
            schedule = tfmot.sparsity.keras.ConstantSparsity(s, begin_step=0, frequency=1)
        else:
            schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, s, begin_step=0, end_step=steps,
                                                           frequency=max(1, steps // 4))
        if fresh:  # a new, untrained model of the same shape instead of the one given
            model = models.build_model({"arch": "cnn", "filters": [4], "dense_units": 0, "dropout": 0.0},
                                       flavor="tf_keras")

        def wrap(layer):  # Rescaling is not prunable: wrap the Conv2D and Dense layers only
            if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)):
                return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
            return layer

        pruned = tf_keras.models.clone_model(model, clone_function=wrap)
        opt = tf_keras.optimizers.Adam(learning_rate) if learning_rate else "adam"
        pruned.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
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


def test_pruning_loop_checker_rejects_the_wrong_schedule_and_no_tfmot():
    with pytest.raises(AssertionError, match="schedule is ConstantSparsity.*PolynomialDecay"):
        checks.check_pruning_loop(_pruner(schedule_kind="constant"))
    with pytest.raises(AssertionError, match="final_sparsity is 0.5"):
        checks.check_pruning_loop(_pruner(final=0.5))

    def numpy_masks(model, x, y, target_sparsity, epochs):  # magnitude pruning by hand, no tfmot
        for layer in model.layers:
            if hasattr(layer, "kernel"):
                k = layer.kernel.numpy()
                k[np.abs(k) < np.quantile(np.abs(k), target_sparsity)] = 0
                layer.kernel.assign(k)
        return model

    with pytest.raises(AssertionError, match="prune_low_magnitude"):
        checks.check_pruning_loop(numpy_masks)


def test_pruning_loop_checker_rejects_a_broken_loop():
    with pytest.raises(AssertionError, match="UpdatePruningStep"):
        checks.check_pruning_loop(_pruner(callback=False))
    with pytest.raises(AssertionError, match="accurate.*prune the model passed in"):
        checks.check_pruning_loop(_pruner(fresh=True))
    with pytest.raises(AssertionError, match="accurate.*learning rate"):
        checks.check_pruning_loop(_pruner(learning_rate=0.05))


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

    def max_not_abs(w):  # the scale from max(w), not max|w|: negative weights beyond it
        s = float(np.max(w)) / 127
        return np.clip(np.round(np.asarray(w) / s), -127, 127).astype(np.int8), s

    with pytest.raises(AssertionError, match="largest \\|w\\|"):
        checks.check_int8_quantize(max_not_abs)

    def asymmetric(w):  # 255 levels spread over [-max, max] as if uint8: a scale twice too small
        s = float(np.abs(w).max()) / 255
        return np.clip(np.round(np.asarray(w) / s), -127, 127).astype(np.int8), s

    with pytest.raises(AssertionError, match="scale is"):
        checks.check_int8_quantize(asymmetric)


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

    def without_singular_values(W, r):
        U, S, Vt = np.linalg.svd(W, full_matrices=False)
        return U[:, :r], Vt[:r]

    with pytest.raises(AssertionError, match="Eckart-Young.*S\\[:r\\]"):
        checks.check_low_rank(without_singular_values)

    def columns_of_vt(W, r):
        U, S, Vt = np.linalg.svd(W, full_matrices=False)
        return U[:, :r] * S[:r], Vt[:, :r]

    with pytest.raises(AssertionError, match=r"B \(r, 40\)|B \(\d+, 40\)"):
        checks.check_low_rank(columns_of_vt)


def test_the_stubs_error_passes_through_unchanged():
    def stub(*args):
        raise NotImplementedError("Exercise 4.x: your code here")

    for checker in (checks.check_int8_converter, checks.check_pruning_loop):
        with pytest.raises(NotImplementedError, match="your code here"):
            checker(stub)


def _scan(data=None, together=False, restore=True):
    """A right scan (plain NumPy and Keras), or a plausible wrong one."""
    import pandas as pd

    def scan(model, x_val, y_val, sparsities):
        xs, ys = data() if data else (x_val, y_val)
        names = [lay.name for lay in model.layers if type(lay).__name__ in ("Dense", "Conv2D")]
        rows = []
        for name in names:
            for s in sparsities:
                saved = {n: model.get_layer(n).get_weights() for n in names}
                for n in (names if together else [name]):
                    k, *rest = saved[n]
                    k = k.copy()
                    k.flat[np.argsort(np.abs(k), axis=None)[:int(round(s * k.size))]] = 0
                    model.get_layer(n).set_weights([k, *rest])
                acc = float((model.predict(xs, verbose=0).argmax(1) == ys).mean())
                rows.append({"layer": name, "sparsity": s, "accuracy": acc})
                if restore:
                    for n in names:
                        model.get_layer(n).set_weights(saved[n])
        return pd.DataFrame(rows)

    return scan


def _choose(scan, weights, target_nonzero):
    from mlcourse import compression

    return compression.allocate_sparsity(scan, target_nonzero)


def test_adaptive_sparsity_checker_passes_a_right_answer():
    checks.check_adaptive_sparsity(_scan(), _choose)


def test_adaptive_sparsity_checker_rejects_wrong_scans():
    from mlcourse.checks import compression as cc

    with pytest.raises(AssertionError, match="prunes every layer at once"):
        checks.check_adaptive_sparsity(_scan(together=True), _choose)
    with pytest.raises(AssertionError, match="test set"):
        checks.check_adaptive_sparsity(_scan(data=lambda: cc._tiny_data()[2:]), _choose)
    with pytest.raises(AssertionError, match="weights changed"):
        checks.check_adaptive_sparsity(_scan(restore=False), _choose)


def test_adaptive_sparsity_checker_rejects_wrong_choices():
    def ignores_target(scan, weights, target_nonzero):  # the same choice whatever the target
        return {name: 0.5 for name in weights}

    def uniform(scan, weights, target_nonzero):  # the control, not the answer
        share = 1 - target_nonzero / sum(weights.values())
        return {name: share for name in weights}

    with pytest.raises(AssertionError, match="target was at most"):
        checks.check_adaptive_sparsity(_scan(), ignores_target)
    with pytest.raises(AssertionError, match="course's allocation"):
        checks.check_adaptive_sparsity(_scan(), uniform)
