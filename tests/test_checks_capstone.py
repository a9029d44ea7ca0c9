"""The checkers of notebook 10_capstone: each passes the course's answer and rejects the plausible wrong ones with a
message that says what is wrong."""
import numpy as np
import pytest

from mlcourse import capstone
from mlcourse.checks import capstone as checks

# ---- 10.1 ---------------------------------------------------------------------------------------------------------

def test_baselines_checker(capsys):
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    checks.check_baselines(capstone.fit_baselines)
    assert "✅ Exercise 10.1 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="keys 'logistic regression' and 'MLP'"):
        checks.check_baselines(lambda x, y, s: {"logreg": LogisticRegression().fit(x, y)})
    with pytest.raises(AssertionError, match="not fitted"):
        checks.check_baselines(lambda x, y, s: {"logistic regression": LogisticRegression(),
                                                "MLP": MLPClassifier(random_state=s)})
    d = checks._signals()
    good = capstone.fit_baselines(d.flat(d.x_train), d.y_train, 0)
    with pytest.raises(AssertionError, match="use sklearn.linear_model.LogisticRegression"):
        checks.check_baselines(lambda x, y, s: {"logistic regression": DummyClassifier().fit(x, y),
                                                "MLP": good["MLP"]})
    with pytest.raises(AssertionError, match="random_state=seed"):
        checks.check_baselines(lambda x, y, s: {**good, "MLP": MLPClassifier(max_iter=20).fit(x, y)})
    with pytest.raises(AssertionError, match="not clearly above|barely above chance"):
        checks.check_baselines(lambda x, y, s: {**good, "MLP": MLPClassifier((2,), max_iter=3, random_state=s)
                                                .fit(x, y)})


# ---- 10.2 ---------------------------------------------------------------------------------------------------------

def _space(hp, kernel_size=True):
    return dict(conv_layers=hp.Int("conv_layers", 1, 2), filters=hp.Int("filters", 8, 16, step=8),
                kernel_size=hp.Choice("kernel_size", [3, 5]) if kernel_size else 3,
                learning_rate=hp.Float("learning_rate", 1e-3, 1e-2, sampling="log"))


def _cnn(v, conv_layers=None, input_shape=(40, 1), compile=True):
    import keras

    model = keras.Sequential([keras.Input(input_shape)])
    for _ in range(v["conv_layers"] if conv_layers is None else conv_layers):
        model.add(keras.layers.Conv1D(v["filters"], v["kernel_size"], strides=2, padding="same"))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(10))
    if compile:
        model.compile(keras.optimizers.Adam(v["learning_rate"]), "sparse_categorical_crossentropy", ["accuracy"])
    return model


def test_hypermodel_checker_passes_the_course_space_and_a_hypermodel_class(capsys):
    import keras_tuner as kt

    checks.check_conv1d_hypermodel(capstone.hypermodel)

    class Space(kt.HyperModel):
        def build(self, hp):
            return _cnn(_space(hp))

    checks.check_conv1d_hypermodel(Space())
    assert capsys.readouterr().out.count("✅ Exercise 10.2 passed") == 2


def test_hypermodel_checker_rejects_dense_only_fixed_and_unused_spaces():
    import keras

    def dense_only(hp):
        v = _space(hp)
        model = keras.Sequential([keras.Input((40, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(v["filters"] * v["kernel_size"] * v["conv_layers"]),
                                  keras.layers.Dense(10)])
        model.compile(keras.optimizers.Adam(v["learning_rate"]), "sparse_categorical_crossentropy")
        return model

    with pytest.raises(AssertionError, match="no Conv1D. A Dense-only"):
        checks.check_conv1d_hypermodel(dense_only)
    fixed = {"conv_layers": 2, "filters": 16, "kernel_size": 5, "learning_rate": 1e-3}
    with pytest.raises(AssertionError, match="fixed model"):
        checks.check_conv1d_hypermodel(lambda hp: _cnn(fixed))
    with pytest.raises(AssertionError, match=r"not \['kernel_size'\]"):
        checks.check_conv1d_hypermodel(lambda hp: _cnn(_space(hp, kernel_size=False)))

    def declared_not_used(hp):
        v = _space(hp)
        return _cnn({**v, "filters": 16})

    with pytest.raises(AssertionError, match="'filters' is declared.*same model"):
        checks.check_conv1d_hypermodel(declared_not_used)
    with pytest.raises(AssertionError, match="conv_layers=1 the model has 2 Conv1D"):
        checks.check_conv1d_hypermodel(lambda hp: _cnn(_space(hp), conv_layers=2))
    with pytest.raises(AssertionError, match=r"keras.Input\(\(40, 1\)\)"):
        checks.check_conv1d_hypermodel(lambda hp: _cnn(_space(hp), input_shape=(40, 2)))
    with pytest.raises(AssertionError, match="not compiled"):
        checks.check_conv1d_hypermodel(lambda hp: _cnn(_space(hp), compile=False))


# ---- 10.3 ---------------------------------------------------------------------------------------------------------

def _converter(model, rep, mode):
    import tensorflow as tf

    from mlcourse.session import silenced

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "uint8":
        conv.representative_dataset = lambda: ([np.asarray(rep[i:i + 1], np.float32)] for i in range(len(rep)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.uint8
    with silenced():
        return conv.convert()


def test_int8_and_pruning_checker_passes_the_course_answer(capsys):
    checks.check_int8_and_pruning(capstone.to_int8, capstone.magnitude_prune)
    assert "✅ Exercise 10.3 passed" in capsys.readouterr().out


@pytest.mark.parametrize("mode, message", [("float", "made a float model"),
                                           ("dynamic", "dynamic-range model"),
                                           ("uint8", "input is uint8")])
def test_int8_checker_rejects_float_dynamic_range_and_uint8_models(mode, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_int8_and_pruning(lambda m, rep: _converter(m, rep, mode), capstone.magnitude_prune)


def test_pruning_checker_rejects_in_place_random_and_wrong_share():
    import keras

    def in_place(model, sparsity):
        for layer in model.layers:
            if isinstance(layer, (keras.layers.Conv1D, keras.layers.Dense)):
                k, b = layer.get_weights()
                k[np.abs(k) < np.quantile(np.abs(k), sparsity)] = 0
                layer.set_weights([k, b])
        return model

    def first_ones(model, sparsity):  # zeroes the first weights, not the smallest
        pruned = keras.models.clone_model(model)
        pruned.set_weights(model.get_weights())
        for layer in pruned.layers:
            if isinstance(layer, (keras.layers.Conv1D, keras.layers.Dense)):
                k, b = layer.get_weights()
                flat = k.ravel().copy()
                flat[: int(round(sparsity * flat.size))] = 0
                layer.set_weights([flat.reshape(k.shape), b])
        return pruned

    model = checks._tiny_model()
    saved = model.get_weights()
    try:
        with pytest.raises(AssertionError, match="changed the model it was given"):
            checks.check_int8_and_pruning(capstone.to_int8, in_place)
    finally:
        model.set_weights(saved)  # the checker's cached model: put it back for the next tests
    with pytest.raises(AssertionError, match="zero the smallest"):
        checks.check_int8_and_pruning(capstone.to_int8, first_ones)
    with pytest.raises(AssertionError, match="zeros, asked for 60 %"):
        checks.check_int8_and_pruning(capstone.to_int8, lambda m, s: capstone.magnitude_prune(m, s / 2))


# ---- 10.4 ---------------------------------------------------------------------------------------------------------

def test_distillation_checker(capsys):
    import keras
    from keras import ops

    checks.check_distillation(capstone.kd_loss, capstone.build_student)
    assert "✅ Exercise 10.4 passed" in capsys.readouterr().out

    def hard_labels_only(labels, t, s, T, alpha):
        return capstone.kd_loss(labels, t, s, T, 0.0)

    with pytest.raises(AssertionError, match="never reads the teacher"):
        checks.check_distillation(hard_labels_only, capstone.build_student)

    def no_temperature(labels, t, s, T, alpha):
        return capstone.kd_loss(labels, t, s, 1.0, alpha)

    with pytest.raises(AssertionError, match="equals the T=1 one"):
        checks.check_distillation(no_temperature, capstone.build_student)

    def no_t_squared(labels, t, s, T, alpha):
        hard = capstone.kd_loss(labels, t, s, T, 0.0)
        soft = capstone.kd_loss(labels, t, s, T, 1.0) / T ** 2
        return (1 - alpha) * hard + alpha * soft

    with pytest.raises(AssertionError, match=r"lacks the T\*\*2"):
        checks.check_distillation(no_t_squared, capstone.build_student)

    def mse_on_logits(labels, t, s, T, alpha):  # the hard term, plus a logit MSE: soft-ish, but not the soft KL
        hard = capstone.kd_loss(labels, t, s, T, 0.0)
        return (1 - alpha) * hard + alpha * ops.mean((ops.convert_to_tensor(t) - ops.convert_to_tensor(s)) ** 2, -1)

    with pytest.raises(AssertionError, match=r"With T=4.0, alpha=1.0 your mean loss"):
        checks.check_distillation(mse_on_logits, capstone.build_student)

    def too_big():
        return keras.Sequential([keras.Input((40, 1)), keras.layers.Conv1D(32, 5, padding="same"),
                                 keras.layers.Flatten(), keras.layers.Dense(10)])

    with pytest.raises(AssertionError, match="budget is 3,000"):
        checks.check_distillation(capstone.kd_loss, too_big)

    def dense_student():
        return keras.Sequential([keras.Input((40, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])

    with pytest.raises(AssertionError, match="no Conv1D"):
        checks.check_distillation(capstone.kd_loss, dense_student)


# ---- 10.5 ---------------------------------------------------------------------------------------------------------

def _interpreter_predict(tflite, prepare):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=bytes(tflite))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def predict(x):
        labels = []
        for row in prepare(x, inp):
            it.set_tensor(inp["index"], row[None])
            it.invoke()
            labels.append(int(it.get_tensor(out["index"]).argmax()))
        return np.asarray(labels)

    return predict


def _quantized(x, inp):
    scale, zero = inp["quantization"]
    return np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)


def _no_validation(tflite):  # reshapes whatever comes: two channels become two signals, NaN becomes a number
    return _interpreter_predict(tflite, lambda x, inp: _quantized(np.asarray(x, np.float32).reshape(-1, 40, 1), inp))


def _vague(tflite):
    predict = capstone.make_predictor(tflite)

    def vague(x):
        try:
            return predict(x)
        except (TypeError, ValueError):
            raise ValueError("bad request") from None

    return vague


def _per_position_ks(reference, current, alpha=0.01):  # 40 tests at alpha each: false alarms on benign batches
    from scipy.stats import ks_2samp

    ref, cur = (np.asarray(a).reshape(len(a), -1) for a in (reference, current))
    return any(ks_2samp(ref[:, i], cur[:, i]).pvalue < alpha for i in range(ref.shape[1]))


def _mean_only(reference, current, alpha=0.001):  # a t-test on the mean: the generator re-centres every dataset
    from scipy.stats import ttest_ind

    return ttest_ind(np.asarray(reference).ravel(), np.asarray(current).ravel()).pvalue < alpha


def test_serving_and_alarm_checker(capsys):
    checks.check_serving_and_alarm(capstone.make_predictor, capstone.drift_alarm)
    assert "✅ Exercise 10.5 passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="was accepted"):
        checks.check_serving_and_alarm(_no_validation, capstone.drift_alarm)
    with pytest.raises(AssertionError, match="does not say what is wrong"):
        checks.check_serving_and_alarm(_vague, capstone.drift_alarm)
    with pytest.raises(AssertionError, match="rang on benign batch"):
        checks.check_serving_and_alarm(capstone.make_predictor, lambda r, c: True)
    with pytest.raises(AssertionError, match="stayed quiet on the batch with more noise"):
        checks.check_serving_and_alarm(capstone.make_predictor, lambda r, c: False)
    with pytest.raises(AssertionError, match="rang on benign batch"):
        checks.check_serving_and_alarm(capstone.make_predictor, _per_position_ks)
    with pytest.raises(AssertionError, match="stayed quiet"):
        checks.check_serving_and_alarm(capstone.make_predictor, _mean_only)


def test_serving_checker_rejects_a_predictor_that_skips_quantization():
    def raw_cast(tflite):  # validated, but cast to int8 with no scale / zero point
        return _interpreter_predict(tflite, lambda x, inp: capstone.validate_signals(x).astype(np.int8))

    with pytest.raises(AssertionError, match="quantize the input"):
        checks.check_serving_and_alarm(raw_cast, capstone.drift_alarm)
