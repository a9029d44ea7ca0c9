"""The one machine probe: flags parsed once, described beside every speed verdict."""
from mlcourse import machine

AVX2 = "model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma f16c\n"
AVX512 = ("model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx_vnni avx512_bf16\n"
          "model name\t: ignored second core\nflags\t\t: fpu\n")


def test_flags_are_read_from_the_first_cpu_and_described():
    a, b = machine.cpu(AVX2), machine.cpu(AVX512)
    assert a["model"] == "AMD EPYC" and "avx2" in a["flags"] and a["known"]
    assert "avx512_bf16" in b["flags"] and "fpu" in b["flags"]
    assert not machine.has(*machine.INT8_DOT, cpuinfo=AVX2) and machine.has(*machine.INT8_DOT, cpuinfo=AVX512)
    assert machine.describe(AVX2).endswith("avx2 fma f16c (int8 dot products: no; native bf16: no)")
    assert "avx512_vnni avx_vnni avx512_bf16 (int8 dot products: yes; native bf16: yes)" in machine.describe(AVX512)


def test_no_cpuinfo_is_said_not_guessed():
    assert "flags unknown" in machine.describe("") and not machine.cpu("")["known"]


def test_probe_has_the_report_environment_keys():
    p = machine.probe()
    assert set(p) == {"cpu", "cpu cores", "cpu features", "gpu"} and isinstance(p["cpu cores"], int)
