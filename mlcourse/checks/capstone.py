"""Checkers of the exercises of notebook 10_capstone (MNIST-1D, end to end: ``solutions/10_capstone.ipynb``).

Each runs in seconds on small MNIST-1D samples made by the generator (:func:`mlcourse.capstone.make_data`) or a
fixed tiny Conv1D model, and says what is wrong and what to do when it fails.
"""
from __future__ import annotations

import functools
import json

import numpy as np

from mlcourse.checks._common import _passed
from mlcourse.session import quiet_import

__all__ = ["check_baselines", "check_conv1d_hypermodel", "check_int8_and_pruning", "check_distillation",
           "check_serving_and_alarm"]

#: The hyperparameters Exercise 10.2's space must declare (more are welcome).
REQUIRED_HP = ("conv_layers", "filters", "kernel_size", "learning_rate")


@functools.lru_cache(maxsize=1)
def _signals():
    """1200 generated MNIST-1D signals (960 train, 240 test), the same for every learner."""
    from mlcourse import capstone

    return capstone.make_data(1200, seed=7)


def _quiet():
    from mlcourse.session import quiet_tensorflow, silenced

    quiet_tensorflow()
    return silenced()


def _accuracy(model, x, y) -> float:
    return float((np.asarray(model.predict(x)).ravel() == np.asarray(y)).mean())


def check_baselines(fn) -> None:
    """Exercise 10.1: ``fn(x (N, 40), y, seed) -> {"logistic regression": fitted, "MLP": fitted}`` (scikit-learn
    estimators or pipelines), deterministic for a seed, each above chance on held-out signals, the MLP above the
    linear model (the paper: 32 % vs 68 %).

    Lesson: 10_capstone § ✏️ Exercise 10.1: the baselines.
    """
    from sklearn.base import is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    d = _signals()
    x, y, xt, yt = d.flat(d.x_train), d.y_train, d.flat(d.x_test), d.y_test
    out = fn(x, y, 0)
    assert isinstance(out, dict) and {"logistic regression", "MLP"} <= set(out), (
        "Return a dict with the two baselines under the keys 'logistic regression' and 'MLP'; got "
        f"{sorted(out) if isinstance(out, dict) else type(out).__name__}.")
    kinds = {}
    for name in ("logistic regression", "MLP"):
        est = out[name]
        assert is_classifier(est) and hasattr(est, "predict"), (
            f"{name!r} is a {type(est).__name__}: return a fitted scikit-learn classifier (or a Pipeline ending in "
            "one).")
        try:
            check_is_fitted(est)
        except NotFittedError as err:
            raise AssertionError(f"{name!r} is not fitted: call .fit(x, y) on the training signals before returning "
                                 "it.") from err
        last = est.steps[-1][1] if hasattr(est, "steps") else est
        kinds[name] = type(last).__name__
    assert kinds["logistic regression"] == "LogisticRegression", (
        f"The linear baseline is a {kinds['logistic regression']}: use sklearn.linear_model.LogisticRegression, the "
        "paper's first column.")
    assert kinds["MLP"] == "MLPClassifier", (
        f"The MLP baseline is a {kinds['MLP']}: use sklearn.neural_network.MLPClassifier (hidden layers, ReLU).")
    acc = {name: _accuracy(out[name], xt, yt) for name in ("logistic regression", "MLP")}
    for name, a in acc.items():
        assert a > 0.2, (f"{name!r} gets {a:.1%} on held-out signals, barely above chance (10 %): fit it on (x, y) as "
                         "given (shape (N, 40)), with enough iterations (max_iter).")
    mlp = out["MLP"].steps[-1][1] if hasattr(out["MLP"], "steps") else out["MLP"]
    assert mlp.get_params().get("random_state") is not None, (
        "The MLP has random_state=None: two runs give two different baselines. Pass random_state=seed to "
        "MLPClassifier, so the baseline is reproducible.")
    assert acc["MLP"] > acc["logistic regression"] + 0.05, (
        f"The MLP ({acc['MLP']:.1%}) is not clearly above the logistic regression ({acc['logistic regression']:.1%}): "
        "give it a hidden layer (e.g. hidden_layer_sizes=(100,)) and iterations enough to learn (max_iter=200).")
    _passed("10.1", "a LogisticRegression and an MLPClassifier, fitted, reproducible for a seed, the MLP above the "
                    "linear model on held-out signals.")


def _space(hp) -> dict:
    return {p.name: p for p in hp.space}


def _probe_values(param) -> tuple:
    """Two different values of a keras-tuner hyperparameter, from its own range."""
    cfg = param.get_config()
    if "values" in cfg and cfg["values"]:
        values = list(cfg["values"])
        return values[0], values[-1]
    if "min_value" in cfg:
        return cfg["min_value"], cfg["max_value"]
    return None


def _fingerprint(model) -> str:
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in ("name", "build_config", "compile_config")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    opt = model.optimizer.get_config() if getattr(model, "optimizer", None) is not None else {}
    opt = {k: v for k, v in opt.items() if k != "name"}
    return json.dumps([strip(model.get_config()), opt], sort_keys=True, default=str)


def check_conv1d_hypermodel(hypermodel) -> None:
    """Exercise 10.2: ``hypermodel(hp)`` (a function, or a ``keras_tuner.HyperModel``) declares at least
    :data:`REQUIRED_HP`, builds a compiled Keras 3 model of Conv1D layers, (40, 1) signals in, 10 outputs, with as
    many Conv1D layers as ``conv_layers`` says, and every declared hyperparameter changes the model.

    Lesson: 10_capstone § ✏️ Exercise 10.2: the hypermodel.
    """
    keras = quiet_import("keras")
    import keras_tuner as kt

    build = hypermodel.build if isinstance(hypermodel, kt.HyperModel) else hypermodel
    assert callable(build), "Pass the hypermodel: a function hp -> model, or a keras_tuner.HyperModel."
    hp = kt.HyperParameters()
    with _quiet():
        model = build(hp)
    assert isinstance(model, keras.Model), (
        f"The hypermodel returned a {type(model).__name__}: return a Keras 3 model (import keras; keras-tuner only "
        "takes Keras 3 models, not tf_keras).")
    space = _space(hp)
    assert space, ("The hypermodel declares no hyperparameter: it is a fixed model, so there is nothing to search. "
                   "Declare the space with hp.Int / hp.Choice / hp.Float and use the values they return.")
    missing = [n for n in REQUIRED_HP if n not in space]
    assert not missing, (f"The space declares {sorted(space)} but not {missing}: search at least {list(REQUIRED_HP)} "
                         "(hp.Int('conv_layers', 2, 3), hp.Int('filters', ...), hp.Choice('kernel_size', ...), "
                         "hp.Float('learning_rate', ..., sampling='log')).")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    kinds = [type(layer).__name__ for layer in model.layers]
    assert convs, (f"The model's layers are {kinds}: no Conv1D. A Dense-only "
                   "space ignores where a pattern sits in the signal; build keras.layers.Conv1D layers over the "
                   "(40, 1) input.")
    assert tuple(model.input_shape[1:]) == (40, 1), (
        f"The model takes input {model.input_shape}: start with keras.Input((40, 1)) (40 samples, one channel).")
    assert tuple(model.output_shape[1:]) == (10,), f"The model outputs {model.output_shape}: end with 10 units."
    assert getattr(model, "optimizer", None) is not None and getattr(model, "compiled", True), (
        "The model is not compiled: compile it inside the hypermodel (the tuner fits it as returned), with "
        "Adam(learning_rate) and a metric named 'accuracy'.")
    for name, param in space.items():
        values = _probe_values(param)
        if values is None or values[0] == values[1]:
            continue
        prints = []
        for value in values:
            probe = kt.HyperParameters.from_config(hp.get_config())
            probe.values[name] = value
            with _quiet():
                m = build(probe)
            prints.append(_fingerprint(m))
            if name == "conv_layers":
                n = sum(isinstance(layer, keras.layers.Conv1D) for layer in m.layers)
                assert n == value, (f"With conv_layers={value} the model has {n} Conv1D layers: build one Conv1D "
                                    "per layer in a loop over range(conv_layers).")
        assert prints[0] != prints[1], (
            f"{name!r} is declared, but building with {name}={values[0]} and {name}={values[1]} gives the same model: "
            "pass the value hp returns to the layer or optimizer, not a constant (a fixed model dressed as a space).")
    _passed("10.2", f"a Conv1D space over {sorted(space)}: (40, 1) in, 10 out, compiled, every hyperparameter used.")


@functools.lru_cache(maxsize=1)
def _tiny_model():
    """A fixed tiny Conv1D classifier (seeded, 3 epochs on 960 generated signals)."""
    keras = quiet_import("keras")

    d = _signals()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((40, 1)), keras.layers.Conv1D(8, 5, strides=2, padding="same",
                                                                         activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    with _quiet():
        model.fit(d.x_train, d.y_train, epochs=3, batch_size=64, verbose=0)
    return model


@functools.lru_cache(maxsize=1)
def _tiny_int8() -> bytes:
    """The course's full-int8 conversion of :func:`_tiny_model`."""
    from mlcourse import capstone

    with _quiet():
        return capstone.to_int8(_tiny_model(), _signals().x_train[:200])


def _kernels(model):
    return {layer.name: layer.get_weights()[0] for layer in model.layers
            if type(layer).__name__ in ("Conv1D", "Dense")}


def check_int8_and_pruning(to_int8, magnitude_prune) -> None:
    """Exercise 10.3: ``to_int8(model, representative) -> bytes`` is full-int8 (int8 input and output, int8
    weights, no float tensor), and ``magnitude_prune(model, sparsity) -> model`` zeroes the smallest-magnitude
    share of every Conv1D / Dense kernel, leaving the input model as it was.

    Lesson: 10_capstone § ✏️ Exercise 10.3: the int8 converter and magnitude pruning.
    """
    from mlcourse.litert import evaluate_tflite, interpreter

    d = _signals()
    model = _tiny_model()
    with _quiet():
        blob = to_int8(model, d.x_train[:200])
    assert isinstance(blob, (bytes, bytearray)) and len(blob) > 0, (
        f"to_int8 should return converter.convert() (bytes), got {type(blob).__name__}.")
    it = interpreter(bytes(blob))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    details = it.get_tensor_details()
    int8_weights = any(t["dtype"] == np.int8 and len(t["shape"]) >= 2 and t["name"] and
                       t["index"] not in (inp["index"], out["index"]) for t in details)
    if inp["dtype"] == np.float32:
        kind = ("a dynamic-range model (int8 weights, float activations, float input)" if int8_weights
                else "a float model")
        raise AssertionError(
            f"The converter made {kind}: for full int8 set converter.optimizations = [tf.lite.Optimize.DEFAULT], a "
            "representative_dataset (one float32 signal per yield), supported_ops = [TFLITE_BUILTINS_INT8] and "
            "inference_input_type = inference_output_type = tf.int8.")
    assert inp["dtype"] == np.int8, (
        f"The input is {np.dtype(inp['dtype']).name}: set converter.inference_input_type = tf.int8 (signals are "
        "signed, centred on 0).")
    assert out["dtype"] == np.int8, f"The output is {np.dtype(out['dtype']).name}: set inference_output_type = tf.int8."
    floats = sorted({t["name"] for t in details if t["dtype"] == np.float32 and t["name"]})
    assert not floats, (f"Tensors {floats[:3]} are still float32: restrict converter.target_spec.supported_ops = "
                        "[tf.lite.OpsSet.TFLITE_BUILTINS_INT8] and calibrate with a representative_dataset.")
    assert int8_weights, "No int8 weight tensor in the model: quantize with optimizations = [Optimize.DEFAULT]."
    scale, zero = inp["quantization"]
    top = scale * (127 - zero)
    assert top >= 0.5 * float(np.abs(d.x_train).max()), (
        f"The int8 input covers values up to {top:.3g}, the signals reach {np.abs(d.x_train).max():.2f}: calibrate on "
        "the representative signals you were given, as the model receives them (rep[i:i+1], float32).")
    float_acc = float((model.predict(d.x_test, verbose=0).argmax(1) == d.y_test).mean())
    int8_acc = evaluate_tflite(bytes(blob), d.x_test, d.y_test)
    assert int8_acc >= float_acc - 0.03, (
        f"int8 accuracy {int8_acc:.3f} vs float {float_acc:.3f}: more than 3 points lost; calibrate on the signals "
        "given, one per yield.")

    before = [w.copy() for w in model.get_weights()]
    pruned = magnitude_prune(model, 0.6)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())), (
        "magnitude_prune changed the model it was given: clone it first (keras.models.clone_model, then "
        "set_weights(model.get_weights())) and prune the copy, so the unpruned model stays for the comparison.")
    assert pruned is not model, "Return the pruned copy, not the input model."
    got, orig = _kernels(pruned), _kernels(model)
    assert set(got) == set(orig), f"The pruned model's Conv1D/Dense layers {sorted(got)} differ from {sorted(orig)}."
    for name, k in got.items():
        share = float((k == 0).mean())
        assert abs(share - 0.6) <= 0.02, (
            f"Layer {name!r} has {share:.0%} zeros, asked for 60 %: prune each Conv1D and Dense kernel to the "
            "sparsity given (the share of its weights set to 0).")
        kept, cut = np.abs(orig[name][k != 0]), np.abs(orig[name][k == 0])
        assert kept.min() >= cut.max() - 1e-7, (
            f"Layer {name!r}: some zeroed weights were larger than some kept ones: zero the smallest |w| "
            "(np.argsort(np.abs(kernel), axis=None)), not the first ones or random ones.")
        assert np.allclose(k[k != 0], orig[name][k != 0]), f"Layer {name!r}: the kept weights must keep their values."
    _passed("10.3", "int8 in and out, int8 weights, no float tensor, accuracy kept; 60 % of each kernel pruned, the "
                    "smallest magnitudes, on a copy.")


def check_distillation(kd_loss, build_student) -> None:
    """Exercise 10.4: ``kd_loss(labels, teacher_logits, student_logits, temperature, alpha) -> per-example loss``
    uses the teacher's soft targets at the temperature (times T**2), and ``build_student()`` is a Conv1D model
    within the microcontroller budget (:data:`mlcourse.capstone.STUDENT_MAX_PARAMS` parameters), (40, 1) -> 10.

    Lesson: 10_capstone § ✏️ Exercise 10.4: the distillation loss and the student.
    """
    keras = quiet_import("keras")

    from mlcourse import capstone

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 16)
    t, s = rng.normal(0, 3, (16, 10)).astype("float32"), rng.normal(0, 3, (16, 10)).astype("float32")
    cases = ((1.0, 0.0), (4.0, 1.0), (2.0, 0.5), (8.0, 0.9))
    got = {c: np.asarray(kd_loss(labels, t, s, *c), dtype="float64") for c in cases}
    want = {c: np.asarray(capstone.kd_loss(labels, t, s, *c), dtype="float64") for c in cases}
    for c in cases:
        assert got[c].shape == want[c].shape, f"Return one loss per example, shape {want[c].shape}; got {got[c].shape}."
    assert not np.allclose(got[(4.0, 1.0)], got[(1.0, 0.0)]), (
        "With alpha=1 your loss equals the hard-label cross-entropy: it never reads the teacher's logits. The soft "
        "term is KL(softmax(teacher / T) || softmax(student / T)).")
    assert np.allclose(got[(1.0, 0.0)], want[(1.0, 0.0)], rtol=1e-4, atol=1e-5), (
        "With alpha=0 the loss must be the plain cross-entropy of the labels and the student's logits (T=1).")
    soft_t1 = np.asarray(capstone.kd_loss(labels, t, s, 1.0, 1.0), dtype="float64")
    if np.allclose(got[(4.0, 1.0)], soft_t1, rtol=1e-4) or np.allclose(got[(4.0, 1.0)], soft_t1 * 16, rtol=1e-4):
        raise AssertionError("At T=4 your soft term equals the T=1 one: divide both the teacher's and the student's "
                             "logits by the temperature before the softmax.")
    soft_no_t2 = want[(4.0, 1.0)] / 16
    assert not np.allclose(got[(4.0, 1.0)], soft_no_t2, rtol=1e-4), (
        "The soft term lacks the T**2 factor: multiply it by temperature**2, or its gradients shrink as 1/T**2 "
        "and the soft targets stop counting.")
    for c in cases:
        assert np.allclose(got[c], want[c], rtol=1e-4, atol=1e-5), (
            f"With T={c[0]}, alpha={c[1]} your mean loss is {got[c].mean():.4f}, expected {want[c].mean():.4f}: "
            "loss = (1 - alpha) * CE(labels, student) + alpha * T**2 * KL(softmax(teacher/T) || softmax(student/T)).")
    with _quiet():
        student = build_student()
    assert isinstance(student, keras.Model), f"build_student() returned a {type(student).__name__}, not a Keras model."
    n = student.count_params()
    assert n <= capstone.STUDENT_MAX_PARAMS, (
        f"The student has {n:,} parameters; the microcontroller budget is {capstone.STUDENT_MAX_PARAMS:,}: fewer "
        "filters, strided convolutions before the Dense layer, a small Dense head.")
    assert any(isinstance(layer, keras.layers.Conv1D) for layer in student.layers), (
        "The student has no Conv1D layer: keep the spatial prior that makes CNNs win on MNIST-1D, just smaller.")
    assert tuple(student.input_shape[1:]) == (40, 1) and tuple(student.output_shape[1:]) == (10,), (
        f"The student maps {student.input_shape} to {student.output_shape}: use (40, 1) in, 10 logits out.")
    _passed("10.4", f"soft targets at temperature T (times T**2) mixed with the labels; a {n:,}-parameter Conv1D "
                    f"student within the {capstone.STUDENT_MAX_PARAMS:,} budget.")


@functools.lru_cache(maxsize=1)
def _monitoring_sets():
    from mlcourse import capstone

    ref = capstone.make_data(700, seed=11).x_train[:500]
    benign = [capstone.make_data(700, seed=s).x_train[:500] for s in (12, 13)]
    drifted = {"more noise": capstone.make_data(700, seed=14, iid_noise_scale=0.1, corr_noise_scale=0.5).x_train[:500],
               "more translation": capstone.make_data(700, seed=15, max_translation=72).x_train[:500]}
    return ref, benign, drifted


def _must_refuse(predict, bad, what: str, words: tuple, kinds=(ValueError, TypeError)) -> None:
    try:
        predict(bad)
    except kinds as err:
        msg = str(err).lower()
        assert any(w in msg for w in words), (
            f"A request with {what} was refused, but the message {str(err)!r} does not say what is wrong: name it "
            f"(e.g. {words[0]!r}) so the caller can fix the request.")
        return
    except Exception as err:
        raise AssertionError(f"A request with {what} raised {type(err).__name__}: {err}; check it yourself first and "
                             "raise ValueError (or TypeError for a wrong dtype) with a clear message.") from err
    raise AssertionError(f"A request with {what} was accepted: validate before the interpreter sees it.")


def check_serving_and_alarm(make_predictor, drift_alarm) -> None:
    """Exercise 10.5: ``make_predictor(tflite) -> predict`` serves through LiteRT, agreeing with the Keras model,
    and refuses a wrong shape, NaN/inf and a wrong dtype with clear errors; ``drift_alarm(reference, current)``
    raises on drifted batches made with the generator's knobs and stays quiet on new benign batches.

    Lesson: 10_capstone § ✏️ Exercise 10.5: the predictor and the drift alarm.
    """
    d = _signals()
    model = _tiny_model()
    predict = make_predictor(_tiny_int8())
    labels = np.asarray(predict(d.x_test[:100]))
    assert labels.shape == (100,), f"predict(100 signals) should return 100 labels, shape (100,); got {labels.shape}."
    assert np.issubdtype(labels.dtype, np.integer), f"Return integer class labels (argmax); got dtype {labels.dtype}."
    keras_labels = model.predict(d.x_test[:100], verbose=0).argmax(1)
    agree = float((labels == keras_labels).mean())
    assert agree >= 0.9, (
        f"Your LiteRT predictions agree with the Keras model on {agree:.0%} of 100 signals (expected >= 90 %): "
        "quantize the input with the interpreter's (scale, zero_point), q = round(x / scale + zero_point) clipped "
        "to -128..127, as int8; invoke; take the argmax of the output.")
    one = np.asarray(predict(d.x_test[0, :, 0]))
    assert one.shape == (1,), f"One signal of shape (40,) should give one label, shape (1,); got {one.shape}."
    nan = d.x_test[:3].copy()
    nan[1, 5, 0] = np.nan
    inf = d.x_test[:3].copy()
    inf[0, 0, 0] = np.inf
    _must_refuse(predict, d.x_test[:3, :30], "signals of length 30", ("shape", "length", "40"))
    _must_refuse(predict, np.zeros((3, 40, 2), np.float32), "two channels", ("shape", "channel"))
    _must_refuse(predict, nan, "a NaN", ("nan", "finite"))
    _must_refuse(predict, inf, "an infinite value", ("inf", "finite"))
    _must_refuse(predict, np.round(d.x_test[:3] * 10).astype(np.int32), "integer codes", ("dtype", "float", "type"))
    _must_refuse(predict, np.array([["a"] * 40]), "strings", ("dtype", "float", "type"))

    ref, benign, drifted = _monitoring_sets()
    for i, b in enumerate(benign):
        assert not drift_alarm(ref, b), (
            f"The alarm rang on benign batch {i + 1} (a new sample from the same generator settings): false alarms. "
            "With one test per position (40 tests) at alpha each, one fires by chance on most batches: test a few "
            "summaries (e.g. roughness, peak position) and divide alpha by the number of tests (Bonferroni).")
    for name, x in drifted.items():
        assert drift_alarm(ref, x), (
            f"The alarm stayed quiet on the batch with {name}: it must catch what the generator's knobs change. "
            "Compare per-signal summaries with a two-sample test (scipy.stats.ks_2samp): roughness (mean |step|) "
            "for noise, the position of the peak for translation.")
    _passed("10.5", "LiteRT predictions agree with Keras; wrong shape, NaN/inf and wrong dtype refused with clear "
                    "errors; the alarm rings on more noise and more translation, not on 2 benign batches.")
