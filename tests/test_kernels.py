"""Kernels compiled ahead of time (soc.core.kernels): built once, loaded without numba, rebuilt when their sources
change, their signatures enforced, and numba's JIT as the fallback giving the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from soc.core.kernels import KERNEL_MODULES

REPO = Path(__file__).resolve().parents[1]
ATTACKS = REPO.parent / "shared" / "pcaps" / "attacks"

TOY = '''
import numpy as np
from soc.core.kernels import kernel

SCALE = {scale}


@kernel(inline=True)
def _scaled(x):
    return x * SCALE


@kernel("i8(ro(i8[::1]), i8[::1])")
def total(values, out):
    s = 0
    for i in range(values.shape[0]):
        s += _scaled(values[i])
    out[0] = s
    return s
'''

TOY_CALLER = '''
import json, sys
import numpy as np
import toy_kernels

out = np.zeros(1, np.int64)
result = {"total": toy_kernels.total(np.arange(5, dtype=np.int64), out), "out": int(out[0])}
for name, args in {"dtype": (np.arange(5, dtype=np.int32), out),
                   "read-only": (np.arange(5, dtype=np.int64), np.zeros(1, np.int64)[:].view()),
                   "count": (out,)}.items():
    if name == "read-only":
        args[1].flags.writeable = False
    try:
        toy_kernels.total(*args)
        result[name] = "accepted"
    except Exception as exc:
        result[name] = str(exc) if isinstance(exc, TypeError) else type(exc).__name__
result["numba imported"] = "numba" in sys.modules
print(json.dumps(result))
'''


def _run(script: str, cwd: Path, **environment: str) -> tuple[dict[str, object], str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), str(REPO)]), **environment)
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=900, check=True)
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def _extensions(cache: Path) -> list[Path]:
    return sorted(cache.glob("toy_kernels_*.so"))


def test_built_once_loaded_without_numba_and_rebuilt_when_the_source_changes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    source = tmp_path / "toy_kernels.py"
    source.write_text(TOY.format(scale=3))

    first, _ = _run(TOY_CALLER, tmp_path, SOC_KERNEL_CACHE=str(cache))
    assert first["total"] == first["out"] == 3 * (0 + 1 + 2 + 3 + 4)
    assert first["numba imported"] is False  # the build ran in a child process
    [built] = _extensions(cache)
    stamp = built.stat().st_mtime_ns

    again, _ = _run(TOY_CALLER, tmp_path, SOC_KERNEL_CACHE=str(cache))
    assert again == first
    assert _extensions(cache) == [built] and built.stat().st_mtime_ns == stamp  # loaded, not rebuilt

    source.write_text(TOY.format(scale=4))  # a constant numba freezes into the code
    changed, _ = _run(TOY_CALLER, tmp_path, SOC_KERNEL_CACHE=str(cache))
    assert changed["total"] == 4 * 10
    assert len(_extensions(cache)) == 2


def test_signatures_are_enforced_before_native_code_runs(tmp_path: Path) -> None:
    (tmp_path / "toy_kernels.py").write_text(TOY.format(scale=3))
    result, _ = _run(TOY_CALLER, tmp_path, SOC_KERNEL_CACHE=str(tmp_path / "cache"))
    assert result["dtype"] == ("kernel total, argument 0: expected a C-contiguous 1-d int64 array, "
                               "got a C-contiguous 1-d int32 array")
    assert result["read-only"] == ("kernel total, argument 1: expected a C-contiguous writable 1-d int64 array, "
                                   "got a C-contiguous 1-d int64 array (read-only)")
    assert result["count"] == "kernel total takes 2 arguments, got 1"


def test_numba_jit_is_the_fallback_when_no_extension_can_be_built(tmp_path: Path) -> None:
    (tmp_path / "toy_kernels.py").write_text(TOY.format(scale=3))
    (tmp_path / "not-a-directory").write_text("")
    result, stderr = _run(TOY_CALLER, tmp_path, SOC_KERNEL_CACHE=str(tmp_path / "not-a-directory" / "cache"))
    assert result["total"] == 30 and result["numba imported"] is True
    assert "kernels of toy_kernels run through numba's JIT: no native build" in stderr
    assert result["dtype"] == "accepted"  # numba's dispatcher compiles a specialisation for it instead
    assert result["read-only"] == "TypingError"  # and refuses to compile a write into a read-only array


FLOWS_DIGEST = '''
import dataclasses, hashlib, json, sys
from collectors.flows import FlowMeter
from collectors.packets import CaptureReader

digest, flows = hashlib.sha256(), 0
for path in sys.argv[1:]:
    meter = FlowMeter()
    batches = [meter.update(batch) for batch in CaptureReader(path)] + [meter.flush()]
    for batch in batches:
        flows += len(batch)
        for field in dataclasses.fields(batch):
            name, value = field.name, getattr(batch, field.name)
            items = sorted(value.items()) if isinstance(value, dict) else [(name, value)]
            for key, column in items:
                digest.update(key.encode() + column.tobytes())
print(json.dumps({"flows": flows, "digest": digest.hexdigest(), "numba imported": "numba" in sys.modules}))
'''


def test_native_and_jit_kernels_meter_real_captures_alike(tmp_path: Path) -> None:
    captures = [str(ATTACKS / "zeek__sshguess.pcap"), str(ATTACKS / "chrissanders__synscan.pcapng")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    runs = {}
    for kernels in ("native", "jit"):
        done = subprocess.run([sys.executable, "-c", FLOWS_DIGEST, *captures], capture_output=True, text=True,
                              env={**env, "SOC_KERNELS": kernels}, timeout=1800, check=True)
        runs[kernels] = json.loads(done.stdout.splitlines()[-1])
    assert runs["native"]["flows"] > 100
    assert runs["native"]["digest"] == runs["jit"]["digest"]
    assert runs["native"]["numba imported"] is False and runs["jit"]["numba imported"] is True


def test_every_module_declaring_kernels_is_listed() -> None:
    declaring = set()
    for top in ("collectors", "detectors", "soc", "lab"):
        for path in (REPO / top).rglob("*.py"):
            if "@kernel(" in path.read_text() and path.name != "kernels.py":
                declaring.add(".".join(path.relative_to(REPO).with_suffix("").parts))
    assert declaring == set(KERNEL_MODULES)


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_the_packet_path_modules_import_without_numba(module: str) -> None:
    code = textwrap.dedent(f"""
        import sys, {module}
        print("numba" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.stdout.strip() == "False"


def test_build_command_builds_once_and_names_what_it_cannot_build(tmp_path: Path) -> None:
    (tmp_path / "toy_kernels.py").write_text(TOY.format(scale=3))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    command = [sys.executable, "-m", "soc.core.kernels", "toy_kernels", "--output", str(tmp_path / "cache")]
    built = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=True)
    path = Path(built.stdout.strip())
    assert path.exists() and path.parent == tmp_path / "cache"
    stamp = path.stat().st_mtime_ns
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=True)
    assert again.stdout.strip() == str(path) and path.stat().st_mtime_ns == stamp
    result, _ = _run(TOY_CALLER, tmp_path, SOC_KERNEL_CACHE=str(tmp_path / "cache"))
    assert result["total"] == 30 and path.stat().st_mtime_ns == stamp

    missing = subprocess.run([*command[:3], "toy_kernels_missing"], capture_output=True, text=True, env=env,
                             timeout=300)
    assert missing.returncode == 1
    assert "cannot build toy_kernels_missing: No module named 'toy_kernels_missing'" in missing.stderr


def test_a_constant_changed_at_run_time_is_not_built_under_a_wrong_name(tmp_path: Path) -> None:
    """The child process that builds sees the module as it is on disk; when the caller changed a constant the
    kernels freeze, the child refuses, and the caller's own values run through numba's JIT."""
    (tmp_path / "toy_kernels.py").write_text(TOY.format(scale=3))
    caller = TOY_CALLER.replace("import toy_kernels\n", "import toy_kernels\ntoy_kernels.SCALE = 5\n")
    result, stderr = _run(caller, tmp_path, SOC_KERNEL_CACHE=str(tmp_path / "cache"))
    assert result["total"] == 50 and result["numba imported"] is True
    assert "is not the module the caller loaded" in stderr
    assert _extensions(tmp_path / "cache") == []
