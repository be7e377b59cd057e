"""What the benchmarks record about the machine they ran on."""

import platform


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (else platform's)."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
