"""mlcourse.pipelines: TFRecord shards of PNGs, the tf.data chain with each optimisation, the interleaved
epoch-time table and its explanation (notebook 06, section 5)."""
import numpy as np
import pytest

from mlcourse import data, pipelines


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    ds = data.load_fashion_mnist(source="embedded")
    return ds, pipelines.write_shards(ds.x_train[:300], ds.y_train[:300], tmp_path_factory.mktemp("s"), n_shards=4)


def test_shards_round_trip_with_every_step(shards):
    ds, files = shards
    assert len(files) == 4
    for steps in ((), pipelines.STEPS):
        xs, ys = zip(*[(bx.numpy(), by.numpy()) for bx, by in pipelines.make_dataset(files, steps, batch_size=64)])
        x, y = np.concatenate(xs), np.concatenate(ys)
        assert x.shape == (300, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
        assert sorted(y.tolist()) == sorted(ds.y_train[:300].tolist())  # every image once per epoch
        # augmentation only flips and shifts: the mean brightness per class stays close
        assert abs(x.mean() - ds.x_train[:300].mean()) < 5


def test_shards_are_reused_never_overwritten(shards, tmp_path):
    ds, files = shards
    assert pipelines.write_shards(ds.x_train[:300], ds.y_train[:300], files[0].parent, n_shards=4) == files
    with pytest.raises(FileExistsError, match="other data"):
        pipelines.write_shards(ds.x_train[:200], ds.y_train[:200], files[0].parent, n_shards=4)
    with pytest.raises(ValueError, match="uint8"):
        pipelines.write_shards(ds.x_train[:10].astype(float), ds.y_train[:10], tmp_path)
    with pytest.raises(ValueError, match="unknown pipeline steps"):
        pipelines.make_dataset(files, ["turbo"])
    with pytest.raises(FileNotFoundError, match="write_shards"):
        pipelines.make_dataset([tmp_path / "nope.tfrecord"])


def test_epoch_time_table_is_interleaved_with_bounds_and_explained(shards):
    _, files = shards
    table = pipelines.epoch_time_table(files, batch_size=64, rounds=2)
    assert table.pipeline.tolist() == (["baseline (sequential)"] + [f"+ {s}" for s in pipelines.STEPS]
                                       + ["model alone (batches in memory)"])
    assert (table["epoch time (s)"] > 0).all() and table["speed-up"].iloc[0] == 1.0
    assert (table["p95 (s)"] >= table["epoch time (s)"] - 1e-9).all() and (table["spread"] >= 0).all()
    assert table["faster in"].iloc[1:].str.fullmatch(r"\d/2").all()
    assert table["pipeline alone (s)"].notna().sum() == 2
    assert (table["min (s)"] <= table["epoch time (s)"] + 1e-9).all()
    assert set(table.attrs["timing"].index) >= set(table.pipeline)  # the raw timing, for timing.compare
    text = pipelines.where_time_goes(table, cores=2)
    assert "Sequential epoch" in text and "2x goal" in text and "2 cores" in text
    assert "faster" in text or "too close" in text or "slower" in text  # timing.compare's verdict is in it


def test_where_time_goes_refuses_an_impossible_bound():
    import pandas as pd

    rows = [("baseline (sequential)", 5.0, 6.0), ("+ interleave", 5.0, None), ("+ parallel_map", 5.0, None),
            ("+ cache", 5.0, None), ("+ prefetch", 5.0, 1.0), ("model alone (batches in memory)", 8.0, None)]
    table = pd.DataFrame(rows, columns=["pipeline", "epoch time (s)", "pipeline alone (s)"])
    assert "cannot be" in pipelines.where_time_goes(table, cores=2)  # sequential faster than the model alone


def test_latency_is_waited_for_and_every_step_still_returns_every_image(shards):
    ds, files = shards
    with pytest.raises(ValueError, match=">= 0"):
        pipelines.Latency(open_s=-1)
    lat = pipelines.Latency(open_s=0.01, record_s=0.0005)
    assert lat.total(4, 300) == pytest.approx(4 * 0.01 + 300 * 0.0005)
    for steps in ((), pipelines.STEPS):
        ys = np.concatenate([by.numpy() for _, by in pipelines.make_dataset(files, steps, batch_size=64, latency=lat)])
        assert sorted(ys.tolist()) == sorted(ds.y_train[:300].tolist())
    import time

    t0 = time.perf_counter()
    for _ in pipelines.make_dataset(files, (), batch_size=64, latency=lat):
        pass
    assert time.perf_counter() - t0 >= lat.total(4, 300) * 0.9  # the sequential chain waits for every file, record


def test_pipelines_switch_off_tf_data_rewrites(shards):
    _, files = shards
    opts = pipelines.make_dataset(files, ()).options().experimental_optimization
    assert opts.map_parallelization is False and opts.inject_prefetch is False
    assert pipelines.plain_options().experimental_optimization.map_parallelization is False


def test_dataset_ops_lists_the_chain(shards):
    _, files = shards
    ops = pipelines.dataset_ops(pipelines.make_dataset(files, pipelines.STEPS))
    assert ops[0] == "PrefetchDataset"
    assert {"CacheDataset", "ParallelMapDataset", "ParallelInterleaveDataset"} <= set(ops)
    assert "OptionsDataset" not in ops  # with_options transforms nothing
    naive = pipelines.dataset_ops(pipelines.make_dataset(files, ()))
    assert "PrefetchDataset" not in naive and "CacheDataset" not in naive and "ParallelMapDataset" not in naive
