"""The checkers of notebook 02_tuning: each passes a right answer and rejects typical wrong ones with an
explanation."""
import math

import pytest

from mlcourse import checks


def hypermodel(hp, lr_sampling="log", filters=("Int", 16, 64, 16), use_dropout=True, use_lr=True):
    import keras

    f = hp.Int("filters", filters[1], filters[2], step=filters[3]) if filters[0] == "Int" else \
        hp.Choice("filters", [16, 32, 48, 64])
    units = hp.Choice("dense_units", [32, 64, 128])
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1)
    lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling=lr_sampling)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Rescaling(1 / 255), keras.layers.Reshape((28, 28, 1)),
                              keras.layers.Conv2D(f, 3, activation="relu"), keras.layers.MaxPooling2D(),
                              keras.layers.Flatten(), keras.layers.Dropout(dropout if use_dropout else 0.25),
                              keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(lr if use_lr else 1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_hypermodel_tuner_checker():
    import keras_tuner as kt

    def make_tuner(directory, max_trials):
        return kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=max_trials, seed=0,
                               directory=directory, project_name="ex11")

    checks.check_hypermodel_tuner(hypermodel, make_tuner)
    with pytest.raises(AssertionError, match="sampling"):
        checks.check_hypermodel_tuner(lambda hp: hypermodel(hp, lr_sampling="linear"), make_tuner)
    with pytest.raises(AssertionError, match="hp.Int"):
        checks.check_hypermodel_tuner(lambda hp: hypermodel(hp, filters=("Choice",)), make_tuner)
    with pytest.raises(AssertionError, match="RandomSearch"):
        checks.check_hypermodel_tuner(hypermodel, lambda d, n: kt.BayesianOptimization(
            hypermodel, objective="val_accuracy", max_trials=n, directory=d, project_name="b"))
    with pytest.raises(AssertionError, match="val_accuracy"):
        checks.check_hypermodel_tuner(hypermodel, lambda d, n: kt.RandomSearch(
            hypermodel, objective="val_loss", max_trials=n, directory=d, project_name="c"))


def test_hypermodel_checker_rejects_declared_but_unused_hyperparameters():
    import keras_tuner as kt

    def make_tuner(directory, max_trials):
        return kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=max_trials, seed=0,
                               directory=directory, project_name="ex11")

    with pytest.raises(AssertionError, match="'dropout' is declared but.*does not change"):
        checks.check_hypermodel_tuner(lambda hp: hypermodel(hp, use_dropout=False), make_tuner)
    with pytest.raises(AssertionError, match="'learning_rate' is declared but.*does not change"):
        checks.check_hypermodel_tuner(lambda hp: hypermodel(hp, use_lr=False), make_tuner)


def brackets(max_epochs, factor):
    n, e = 0, max_epochs
    while e >= 1:
        e, n = e / factor, n + 1
    end = math.ceil(1 + math.log(max_epochs, factor))
    return [(s, r, math.ceil(end / (s + 1) * factor ** (s - r)), math.ceil(max_epochs / factor ** (s - r)))
            for s in range(n - 1, -1, -1) for r in range(s + 1)]


def test_hyperband_brackets_checker():
    checks.check_hyperband_brackets(brackets)
    with pytest.raises(AssertionError, match="highest bracket|math.ceil"):
        checks.check_hyperband_brackets(lambda m, f: list(reversed(brackets(m, f))))
    with pytest.raises(AssertionError, match="rounds, expected"):
        checks.check_hyperband_brackets(lambda m, f: brackets(m, f)[1:])


def test_retrain_best_checker():
    def right(tuner, x, y, epochs):
        best = tuner.get_best_hyperparameters(1)[0]
        model = tuner.hypermodel.build(best)
        model.fit(x, y, epochs=epochs, verbose=0)
        return best.values, model

    checks.check_retrain_best(right)

    def not_retrained(tuner, x, y, epochs):
        return tuner.get_best_hyperparameters(1)[0].values, tuner.get_best_models(1)[0]

    with pytest.raises(AssertionError, match="fresh model"):
        checks.check_retrain_best(not_retrained)

    def worst(tuner, x, y, epochs):
        best_id = tuner.oracle.get_best_trials(1)[0].trial_id  # another trial than the best (scores may tie)
        hp = next(t for t in tuner.oracle.trials.values() if t.trial_id != best_id).hyperparameters
        model = tuner.hypermodel.build(hp)
        model.fit(x, y, epochs=epochs, verbose=0)
        return hp.values, model

    with pytest.raises(AssertionError, match="get_best_hyperparameters"):
        checks.check_retrain_best(worst)

    def best_model_one_more_epoch(tuner, x, y, epochs):  # looks fresh: 1 epoch of history, steps > 0
        model = tuner.get_best_models(1)[0]
        model.fit(x, y, epochs=epochs, verbose=0)
        return tuner.get_best_hyperparameters(1)[0].values, model

    with pytest.raises(AssertionError, match="weights.*saved best model"):
        checks.check_retrain_best(best_model_one_more_epoch)

    def too_many_epochs(tuner, x, y, epochs):
        best = tuner.get_best_hyperparameters(1)[0]
        model = tuner.hypermodel.build(best)
        model.fit(x, y, epochs=epochs, verbose=0)
        model.fit(x, y, epochs=epochs, verbose=0)
        return best.values, model

    with pytest.raises(AssertionError, match="optimizer steps"):
        checks.check_retrain_best(too_many_epochs)
