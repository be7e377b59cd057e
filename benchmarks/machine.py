"""What the benchmarks record about the machine they ran on."""

import platform

# The vector instructions that decide fp32, bf16 and int8 speed on x86, named
# as /proc/cpuinfo flags, in the order they are reported.
ISA_FLAGS = ["avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (else platform's),
    with its family and model numbers and the vector instructions of
    ISA_FLAGS it has: a virtual machine's name ("AMD EPYC") can stand for
    CPUs with and without AVX-512 or VNNI, whose int8 and bf16 speeds differ."""
    fields = _cpuinfo()
    name = fields.get("model name")
    if not name:
        return platform.processor()
    flags = set(fields.get("flags", "").split())
    isa = [flag for flag in ISA_FLAGS if flag in flags]
    family, model = fields.get("cpu family", "?"), fields.get("model", "?")
    return f"{name} (family {family}, model {model}; {' '.join(isa) or 'no AVX2'})"
