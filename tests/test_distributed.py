"""mlcourse.distributed: real worker processes, fault tolerance, clean-up, what the tasks listen on, no orphans;
mirrored and parameter-server training. (tf.data pipelines: test_pipelines.py.)"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mlcourse import distributed, processes


def _alive(cluster):
    return [n for n, p in cluster.procs.items() if p.poll() is None]


def test_tf_config_names_the_task_and_the_whole_cluster():
    cluster = {"worker": ["localhost:1", "localhost:2"], "ps": ["localhost:3"]}
    cfg = distributed.tf_config(cluster, "worker", 1)
    assert cfg == {"cluster": cluster, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="No task worker:2"):
        distributed.tf_config(cluster, "worker", 2)


def test_local_cluster_gives_each_task_its_own_port_and_always_cleans_up(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with distributed.LocalCluster({"worker": 2, "ps": 1}, tmp_path, {"mode": "none"}) as cluster:
            ports = [a.split(":")[1] for addrs in cluster.cluster.values() for a in addrs]
            assert len(set(ports)) == 3
            cluster.start()
            assert sorted(cluster.procs) == ["ps:0", "worker:0", "worker:1"]
            raise RuntimeError("boom")
    assert _alive(cluster) == []
    assert all(cluster.log_path(n).exists() for n in cluster.names)


def _servers(tmp_path):
    """A cluster whose two tasks only serve (parameter-server mode: ps and worker start a tf.distribute.Server)."""
    return distributed.LocalCluster({"ps": 1, "worker": 1}, tmp_path, {"mode": "parameter_server", "seed": 0,
                                                                      "directory": str(tmp_path)})


def _wait_listening(cluster, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        ports = cluster.listening()
        if len(ports) == 2 and all(ports.values()):
            return ports
        assert _alive(cluster) == sorted(cluster.procs), {n: cluster.log(n) for n in cluster.procs}
        time.sleep(0.3)
    raise AssertionError(f"the servers did not listen within {timeout} s")


def _netns(pid):
    return os.readlink(f"/proc/{pid}/ns/net")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_task_servers_are_unreachable_from_the_network_and_stop_promptly(tmp_path):
    with _servers(tmp_path) as cluster:
        cluster.start()
        ports = _wait_listening(cluster)
        own = {n: int(a.split(":")[1]) for job, addrs in cluster.cluster.items() for n, a in
               ((f"{job}:{i}", a) for i, a in enumerate(addrs))}
        for name, sockets in ports.items():
            assert own[name] in [p for _, p in sockets], f"{name} does not listen on its TF_CONFIG port"
        if not processes.private_network_available():
            pytest.skip("no private network namespace here: LocalCluster warned instead (tasks on every interface)")
        assert cluster.isolated
        for name, p in cluster.procs.items():
            # TensorFlow binds every interface (0.0.0.0 / ::) ...
            assert any(addr in ("0.0.0.0", "::") for addr, _ in ports[name])
            # ... but inside a namespace whose only interface is loopback, not the machine's network
            assert _netns(p.pid) != _netns(os.getpid())
            devices = [line.split(":")[0].strip() for line in open(f"/proc/{p.pid}/net/dev").read().splitlines()[2:]]
            assert devices == ["lo"], devices
        host = [int(line.split()[1].split(":")[1], 16) for name in ("tcp", "tcp6")
                for line in open(f"/proc/net/{name}").read().splitlines()[1:] if line.split()[3] == "0A"]
        assert not set(own.values()) & set(host), "a task port is open in the machine's own network"
        t0 = time.perf_counter()
        cluster.stop()
        assert time.perf_counter() - t0 < 2.5, "the tasks ignored SIGTERM (the stop waited for the SIGKILL)"
        assert _alive(cluster) == []


PARENT = textwrap.dedent("""
    import json, sys, time
    from mlcourse import distributed
    cluster = distributed.LocalCluster({"ps": 1, "worker": 1}, sys.argv[1], {"mode": "parameter_server",
                                       "seed": 0, "directory": sys.argv[1]}).start()
    print(json.dumps([p.pid for p in cluster.procs.values()]), flush=True)
    time.sleep(600)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux; elsewhere a watchdog")
def test_tasks_die_with_a_sigkilled_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=processes.child_env())
    try:
        pids = json.loads(parent.stdout.readline())
        time.sleep(1.0)  # let the tasks get going (importing TensorFlow)
        assert all(os.path.exists(f"/proc/{pid}") for pid in pids)
    finally:
        parent.kill()  # SIGKILL: no clean-up code in the parent runs, as when Jupyter restarts a busy kernel
        parent.wait()
    end = time.time() + 10
    while time.time() < end and any(_running(pid) for pid in pids):
        time.sleep(0.1)
    assert not [pid for pid in pids if _running(pid)], "a task outlived its parent"


def _running(pid):
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def test_process_group_stops_a_child_that_ignores_sigterm(tmp_path):
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                "time.sleep(60)")
    with processes.ProcessGroup(tmp_path, grace=0.5) as group:
        group.start("stubborn", [sys.executable, "-c", stubborn])
        end = time.time() + 30
        while "up" not in group.log("stubborn") and time.time() < end:
            time.sleep(0.05)
        t0 = time.perf_counter()
        group.stop()
        assert time.perf_counter() - t0 < 3 and group.alive() == []
    assert group.procs["stubborn"].returncode == -signal.SIGKILL
    assert "start stubborn" in (tmp_path / "stubborn.log").read_text()


def test_task_reports_a_bad_config_in_its_log(tmp_path):
    with distributed.LocalCluster({"worker": 1}, tmp_path, {"mode": "nonsense", "seed": 0, "directory": str(tmp_path),
                                                           "source": "embedded", "n_train": 10, "n_test": 10}) as c:
        c.start()
        codes = c.wait(timeout=120)
    assert codes["worker:0"] != 0 and "unknown task" in c.log("worker:0")


def test_bad_arguments_and_no_silent_overwrite(tmp_path):
    with pytest.raises(ValueError, match="kill_after_epoch"):
        distributed.train_multi_worker(tmp_path / "a", epochs=2, kill_after_epoch=2)
    with pytest.raises(ValueError, match="at least 1"):
        distributed.train_parameter_server(tmp_path / "b", n_workers=0)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "learner-notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="fresh=True"):
        distributed.train_multi_worker(tmp_path / "c")


def test_killed_worker_resumes_from_backup_without_losing_epochs(tmp_path):
    r = distributed.train_multi_worker(tmp_path / "ft", n_workers=2, epochs=3, n_train=600, n_test=200,
                                       batch_size=32, kill_after_epoch=1, source="embedded", timeout=300)
    assert r["killed after epoch"] >= 1
    assert r["resumed at epoch"] == r["killed after epoch"] + 1       # nothing finished is redone
    assert r["epochs finished"] == [1, 2, 3]                           # every epoch finished exactly once
    assert r["weights finite"] and 0.1 < r["test accuracy"] <= 1
    assert len(r["history"]["loss"]) == 3 - r["killed after epoch"]   # the restart ran only what was left
    assert "worker:0 done" in (tmp_path / "ft" / "logs" / "worker-0.log").read_text()
    # a second run into the same folder is refused; fresh=True keeps the old one aside
    with pytest.raises(FileExistsError):
        distributed.train_multi_worker(tmp_path / "ft", epochs=1, n_train=100, source="embedded")


def test_logical_cpus_and_mirrored_training_in_a_fresh_process(tmp_path):
    code = ("import json, mlcourse; mlcourse.setup(size='smoke')\n"
            "from mlcourse import distributed as d, data\n"
            "devs = d.logical_cpus(2)\n"
            "ds = data.load_fashion_mnist(source='embedded')\n"
            "r = d.train_mirrored(ds.x_train[:256], ds.y_train[:256], ds.x_test[:64], ds.y_test[:64], "
            "global_batch_size=64, epochs=1)\n"
            "print(json.dumps({'devs': len(devs), 'replicas': r['replicas'], 'per': r['per-replica batch']}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {"devs": 2, "replicas": 2, "per": 32}


def test_mirrored_rejects_uneven_batches():
    with pytest.raises(ValueError, match="divide evenly"):
        distributed.train_mirrored(np.zeros((4, 28, 28)), np.zeros(4), np.zeros((4, 28, 28)), np.zeros(4),
                                   devices=["/cpu:0", "/cpu:1"], global_batch_size=63)


def test_cpu_flags_lists_only_known_instruction_sets():
    flags = distributed.cpu_flags()
    assert isinstance(flags, list)
    assert set(flags) <= {"avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16",
                          "amx_tile"}


def test_sizes_table_has_the_three_sizes_and_takes_given_values():
    from mlcourse import settings

    assert set(distributed.SIZES) == set(settings.SIZES)
    lesson = distributed.sizes("lesson")
    assert lesson == distributed.SIZES["lesson"]
    assert distributed.sizes("lesson", N_TRAIN=123, EPOCHS=None)["N_TRAIN"] == 123
    assert distributed.sizes("smoke")["N_TRAIN"] < lesson["N_TRAIN"] <= distributed.sizes("full")["N_TRAIN"]
    with pytest.raises(ValueError, match="unknown"):
        distributed.sizes("lesson", N_TRIAN=1)


def test_gradient_underflow_counts_values_lost_to_zero():
    ref = [np.array([1e-3, 1e-9, 0.0, 2.0]), np.array([[1e-9, 5e-1]])]
    got = [np.array([1e-3, 0.0, 0.0, 2.0]), np.array([[0.0, 5e-1]])]
    r = distributed.gradient_underflow(ref, got)
    assert r["values"] == 6
    assert r["zero (reference)"] == pytest.approx(1 / 6) and r["zero"] == pytest.approx(3 / 6)
    assert r["lost to underflow"] == pytest.approx(2 / 6)
    assert r["below float16's smallest (reference)"] == pytest.approx(2 / 6)
    assert distributed.gradient_underflow(ref, ref)["lost to underflow"] == 0
    with pytest.raises(ValueError, match="same variables"):
        distributed.gradient_underflow(ref, got[:1])


def _mlp(keras, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        return keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(16),
                                 keras.layers.Dense(10), keras.layers.Activation("softmax", dtype="float32")])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_activation_bytes_halve_under_a_16_bit_policy_master_weights_do_not():
    import keras

    x = np.zeros((8, 28, 28), "float32")
    f32 = distributed.activation_bytes(_mlp(keras, "float32"), x)
    f16 = distributed.activation_bytes(_mlp(keras, "mixed_float16"), x)
    assert len(f32) == len(f16) == 4
    assert f32.loc[1, "activation bytes"] == 8 * 16 * 4 and f16.loc[1, "activation bytes"] == 8 * 16 * 2
    assert (f16["stored weight bytes"] == f32["stored weight bytes"]).all()  # float32 master weights
    assert f16.loc[1, "computing weight bytes"] * 2 == f32.loc[1, "computing weight bytes"] == (28 * 28 * 16 + 16) * 4
    assert f16.loc[3, "activation bytes"] == f32.loc[3, "activation bytes"]  # the float32 softmax
    assert f16.loc[1, "compute dtype"] == "float16" and f32.loc[1, "compute dtype"] == "float32"


def test_split_model_steps_give_the_same_gradients_shapes():
    rng = np.random.default_rng(0)
    xb, yb = rng.random((32, 784), dtype=np.float32), rng.integers(0, 10, 32)
    steps = distributed.split_model(xb, yb, ["/cpu:0", "/cpu:0"], width=32)
    assert list(steps) == list(distributed.MODEL_PARALLEL) == [
        "one device", "split (naive)", "split + pipelined (2 micro-batches)", "split + pipelined (8 micro-batches)"]
    shapes = {name: [tuple(g.shape) for g in step()] for name, step in steps.items()}
    assert len(set(map(tuple, shapes.values()))) == 1 and len(shapes["one device"]) == 10  # 5 Dense layers
    naive = steps["split (naive)"]()
    for micro in distributed.MICRO_BATCHES:  # the same weights: micro-batching changes the schedule, not the gradient
        for a, b in zip(naive, steps[f"split + pipelined ({micro} micro-batches)"]()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 8"):
        distributed.split_model(xb[:12], yb[:12], ["/cpu:0", "/cpu:0"], width=8)


def test_strategy_step_trains_under_one_device_strategy():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.random((16, 28, 28), dtype=np.float32) * 255, rng.integers(0, 10, 16)
    step = distributed.strategy_step(tf.distribute.OneDeviceStrategy("/cpu:0"), x, y, distributed.SMALL_CNN)
    for _ in range(2):
        step()


def test_one_core_per_device_times_both_kinds_in_a_fresh_process(tmp_path):
    r = distributed.one_core_per_device(tmp_path, global_batches=(8, 16), width=32, batch=16, rounds=2, number=1,
                                        source="embedded", timeout=300)
    assert r["threads"]["intra_op"] == 1 and r["threads"]["inter_op"] == 2 and len(r["threads"]["devices"]) == 2
    dp, mp = r["data parallel"], r["model parallel"]
    assert list(dp.index) == [*distributed.data_parallel_names(8), *distributed.data_parallel_names(16)]
    assert list(dp["global batch"]) == [8, 8, 16, 16]
    assert distributed.data_parallel_names(16)[1] == "MirroredStrategy (2 devices, 1 core each), global batch 16"
    assert list(mp.index) == list(distributed.MODEL_PARALLEL)
    for table in (dp, mp):
        assert (table["median_ms"] > 0).all() and all(len(r_) == 2 for r_ in table["rounds_ms"])
        assert ((table["cores used"] > 0) & (table["cores used"] <= os.cpu_count() + 0.5)).all()  # CPU / wall time


def test_headlines_give_the_one_core_per_device_speed_ups():
    """The report's 06 headlines: Mirrored over one device at each global batch, and each pipelined split over the
    naive one, read from the fresh process's rows only (the shared-cores rows are the other headline)."""
    fresh, shared = "fresh process (1 core per device)", "this process (shared cores)"
    reps = [{"where": shared, "strategy": "OneDeviceStrategy (all cores)", "global batch": 128, "examples/s": 10.0}]
    for gb, one, two in ((128, 100.0, 120.0), (512, 100.0, 150.0)):
        names = distributed.data_parallel_names(gb)
        reps += [{"where": fresh, "strategy": names[0], "global batch": gb, "examples/s": one},
                 {"where": fresh, "strategy": names[1], "global batch": gb, "examples/s": two}]
    mp = [{"where": shared, "candidate": "split (naive)", "median_ms": 1.0}]
    mp += [{"where": fresh, "candidate": c, "median_ms": ms}
           for c, ms in zip(distributed.MODEL_PARALLEL, (70, 68, 54.4, 85))]
    heads = {h["topic"]: h["measured"] for h in distributed.headlines({
        "MirroredStrategy vs OneDeviceStrategy: examples/s, shared cores and one core per device": reps,
        "model parallelism: step time (ms), shared cores and one core per device": mp})}
    assert heads["MirroredStrategy over OneDeviceStrategy, one core per device (examples/s)"] == (
        "global batch 128: 1.20x; global batch 512: 1.50x")
    assert heads["pipelined over naive model split, one core per device"] == (
        "2 micro-batches: 1.25x; 8 micro-batches: 0.80x")
    assert distributed.headlines({}) == []
