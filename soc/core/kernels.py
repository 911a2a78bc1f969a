"""numba kernels, compiled once per machine ahead of time, so that a fresh process runs them without numba.

Importing numba and initialising its compiler costs a fresh process 1-2 s before the first cached kernel even
loads; a capture replay is done in less. So the modules of the packet path declare their kernels with
:func:`kernel` instead of ``numba.njit``. The first call of one of a module's entry points (a kernel with an
export signature) loads the module's extension from the kernel cache, building it first if it is missing or was
built from other sources (numba.pycc in a child process, about as long as the JIT would take, under a file lock).
Then only numpy is needed. If the build fails (no C compiler, a numba without pycc) or ``SOC_KERNELS=jit`` is set,
the kernels run through numba's JIT with its on-disk cache instead: same code, slower start.

Rules for a kernel module: kernels call only kernels of their own module; an entry point's signature (numba's
syntax, plus ``ro(...)`` for an array the kernel only reads and ``buffer`` for ``ro(u1[::1])``, such as a
memory-mapped capture) is a contract checked on every call, since a native function given an array of another
type would read or write out of bounds. In a hot loop, a kernel inlined with array arguments runs straight through
(no branch, no loop) or takes scalars instead: numba counts references on the arrays an inlined call receives
(an atomic increment and decrement each) and prunes them reliably only in straight-line code; per packet, that
once took a third of the flow meter's time.

    python -m soc.core.kernels [--force]                # build every kernel module now (e.g. when making an image)
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
# the modules that declare kernels, built together by ``python -m soc.core.kernels``
KERNEL_MODULES = ("collectors.packets.formats", "collectors.packets.decode", "collectors.flows.meter",
                  "detectors.network.adminshare")
_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
_BUILD_TIMEOUT = 1800.0


class Kernel:
    """A kernel as its module declared it; calling it runs the compiled code (native extension or numba JIT)."""

    def __init__(self, func: Callable[..., Any], signature: str | None, inline: bool) -> None:
        self.func = func
        self.signature = signature
        self.inline = inline
        self.__name__ = func.__name__
        self.__module__ = func.__module__
        self.__doc__ = func.__doc__
        self.__wrapped__ = func
        self._target: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        target = self._target
        if target is None:
            target = self._target = _resolve(self)
        return target(*args)

    def __repr__(self) -> str:
        return f"<kernel {self.__module__}.{self.__name__}>"


def kernel(signature: str | None = None, *, inline: bool = False) -> Callable[[F], F]:
    """Declare a kernel: ``signature`` makes it an entry point compiled into the module's extension (e.g.
    ``"i8(buffer, i8[::1])"``); ``inline`` asks numba to inline it into the kernels that call it."""

    def declare(func: F) -> F:
        return cast(F, Kernel(func, signature, inline))

    return declare


def prefetch(array: np.ndarray, index: int) -> None:
    """Ask the CPU to start loading ``array[index]`` into its caches (a kernel reading a capture in order
    prefetches a few KiB ahead: the next record's place depends on this one's length, so the hardware cannot
    guess it). Compiled kernels emit LLVM's prefetch; in plain Python it does nothing."""


def _intrinsics() -> dict[Callable[..., Any], Any]:
    """numba's implementations of the placeholders above, keyed by placeholder."""
    from llvmlite import ir
    from numba import types as nt
    from numba.extending import intrinsic

    @intrinsic
    def llvm_prefetch(typingctx: Any, array: Any, index: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            byte_pointer = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            function = builder.module.declare_intrinsic(
                "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]))
            # read (0), keep in all cache levels (3), data cache (1)
            builder.call(function, [builder.bitcast(builder.gep(data, [args[1]]), byte_pointer), i32(0), i32(3),
                                    i32(1)])
            return context.get_dummy_value()

        return nt.void(array, index), codegen

    return {prefetch: llvm_prefetch}


def mode() -> str:
    """``native`` (default: the ahead-of-time extension) or ``jit`` (numba's JIT, for debugging and comparison)."""
    return os.environ.get("SOC_KERNELS", "native")


def cache_dir() -> Path:
    if configured := os.environ.get("SOC_KERNEL_CACHE"):
        return Path(configured)
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(home) / "soc" / "kernels"


def _kernels(module: types.ModuleType) -> dict[str, Kernel]:
    return {name: value for name, value in vars(module).items()
            if isinstance(value, Kernel) and value.__module__ == module.__name__}


def _native_name(module: types.ModuleType) -> str:
    """The extension's name: the module's plus a digest of everything the compiled code depends on."""
    digest = hashlib.sha256(Path(cast(str, module.__file__)).read_bytes())
    # numba freezes the global numbers a kernel names into its code, also ones imported from other modules
    names = set().union(*(_names(k.func.__code__) for k in _kernels(module).values()))
    constants = sorted((name, repr(value)) for name, value in vars(module).items()
                       if name in names and isinstance(value, (int, float, np.generic)))
    digest.update(repr((constants, _environment())).encode())
    return f"{module.__name__.replace('.', '_')}_{digest.hexdigest()[:16]}"


def _names(code: types.CodeType) -> set[str]:
    """The global names a function's code (and the code nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


@functools.cache
def _environment() -> tuple[str, ...]:
    # this file too: it turns signatures and intrinsics into code
    ours = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return sys.version, platform.machine(), np.__version__, importlib.metadata.version("numba"), ours


# --- loading --------------------------------------------------------------------------------------------------------

_natives: dict[str, tuple[types.ModuleType, dict[str, list[Any]]] | None] = {}
_jitted: dict[str, dict[str, Callable[..., Any]]] = {}


def _resolve(target: Kernel) -> Callable[..., Any]:
    module = sys.modules[target.__module__]
    if target.signature and mode() != "jit":
        loaded = _native(module)
        if loaded is not None:
            extension, contracts = loaded
            return _checked(target.__name__, getattr(extension, target.__name__), contracts[target.__name__])
    return jit(module)[target.__name__]


def _native(module: types.ModuleType) -> tuple[types.ModuleType, dict[str, list[Any]]] | None:
    if module.__name__ not in _natives:
        _natives[module.__name__] = _load_or_build(module)
    return _natives[module.__name__]


def _load_or_build(module: types.ModuleType) -> tuple[types.ModuleType, dict[str, list[Any]]] | None:
    name = _native_name(module)
    directory = cache_dir()
    path = directory / f"{name}{_SUFFIX}"
    try:
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / f"{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same extension
                if not path.exists():
                    _build_in_child(module.__name__, name, directory)
        contracts = json.loads((directory / f"{name}.json").read_text())
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        extension = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(extension)
    except (OSError, ImportError, ValueError, subprocess.SubprocessError) as exc:
        log.warning("kernels of %s run through numba's JIT: no native build (%s)", module.__name__, exc)
        return None
    return extension, contracts


def _build_in_child(module_name: str, name: str, directory: Path) -> None:
    log.info("compiling the kernels of %s for this machine, once (%s)", module_name, directory)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-m", "soc.core.kernels", module_name, "--output", str(directory), "--force",
                           "--expect", name],
                          capture_output=True, text=True, env=environment, timeout=_BUILD_TIMEOUT)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise subprocess.SubprocessError(f"build of {module_name} failed: {last}")


def _checked(name: str, native: Callable[..., Any], contract: list[Any]) -> Callable[..., Any]:
    """``native`` behind a check of every argument against the signature it was compiled for."""
    arrays = [(i, np.dtype(c[1]), c[2], c[3] == "C", not c[4]) for i, c in enumerate(contract) if c[0] == "array"]
    count = len(contract)

    def call(*args: Any) -> Any:
        if len(args) != count:
            raise TypeError(f"kernel {name} takes {count} arguments, got {len(args)}")
        for i, dtype, ndim, contiguous, writes in arrays:
            value = args[i]
            if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != ndim or (
                contiguous and not value.flags.c_contiguous) or (writes and not value.flags.writeable):
                raise TypeError(f"kernel {name}, argument {i}: expected a {'C-contiguous ' if contiguous else ''}"
                                f"{'writable ' if writes else ''}{ndim}-d {dtype} array, got {_describe(value)}")
        return native(*args)

    return call


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        layout = "C-contiguous " if value.flags.c_contiguous else ""
        return f"a {layout}{value.ndim}-d {value.dtype} array{'' if value.flags.writeable else ' (read-only)'}"
    return type(value).__name__


# --- numba ----------------------------------------------------------------------------------------------------------


def jit(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """Put numba dispatchers in place of the module's kernels (so kernels calling each other compile) and return
    them by name."""
    if module.__name__ not in _jitted:
        import numba

        if not getattr(numba.config, "DISABLE_JIT", False):  # with the JIT off, kernels run as Python
            implementations = _intrinsics()
            vars(module).update({name: implementations[value] for name, value in vars(module).items()
                                 if isinstance(value, types.FunctionType) and value in implementations})
        dispatchers: dict[str, Callable[..., Any]] = {}
        for name, declared in _kernels(module).items():
            dispatchers[name] = numba.njit(cache=True, inline="always" if declared.inline else "never")(
                declared.func)
        vars(module).update(dispatchers)
        _jitted[module.__name__] = dispatchers
    return _jitted[module.__name__]


def _numba_signature(text: str) -> Any:
    from numba import types as nt

    def ro(array: Any) -> Any:
        return array.copy(readonly=True)

    names: dict[str, Any] = dict(vars(nt), ro=ro, buffer=ro(nt.uint8[::1]))
    return eval(text, {"__builtins__": {}}, names)  # our own sources' signatures, parsed as numba does


def _contract(signature: Any) -> list[Any]:
    from numba import types as nt
    from numba.np.numpy_support import as_dtype

    contract: list[Any] = []
    for arg in signature.args:
        if isinstance(arg, nt.Array):
            contract.append(["array", as_dtype(arg.dtype).str, arg.ndim, arg.layout, not arg.mutable])
        else:
            contract.append(["scalar", str(arg)])
    return contract


def build(module_name: str, directory: Path, expect: str | None = None) -> Path:
    """Compile the entry points of ``module_name`` into its extension in ``directory``; returns its path.
    ``expect``: the extension name the caller computed (a module changed since then is an error, not a build
    under another name)."""
    import warnings

    warnings.filterwarnings("ignore", module="numba.pycc")  # pycc is deprecated, the JIT stays our fallback
    from numba.core.errors import NumbaPendingDeprecationWarning
    from numba.pycc import CC

    warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
    module = importlib.import_module(module_name)
    name = _native_name(module)
    if expect is not None and name != expect:
        raise ValueError(f"{module_name} is not the module the caller loaded (changed on disk, or constants "
                         f"changed at run time): {name} instead of {expect}")
    entries = {n: k for n, k in _kernels(module).items() if k.signature}
    if not entries:
        raise ValueError(f"{module_name} declares no kernel with a signature")
    jit(module)  # the helpers the entry points call must be numba dispatchers while they compile
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        compiler = CC(name)
        compiler.output_dir = scratch
        compiler.verbose = False
        contracts = {}
        for entry_name, entry in entries.items():
            signature = _numba_signature(cast(str, entry.signature))
            contracts[entry_name] = _contract(signature)
            compiler.export(entry_name, signature)(entry.func)
        compiler.compile()
        built = Path(scratch) / f"{name}{_SUFFIX}"
        (Path(scratch) / "contracts.json").write_text(json.dumps(contracts))
        os.replace(Path(scratch) / "contracts.json", directory / f"{name}.json")
        os.replace(built, directory / f"{name}{_SUFFIX}")  # last: its presence means the build is complete
    return directory / f"{name}{_SUFFIX}"


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    parser = argparse.ArgumentParser(prog="python -m soc.core.kernels", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(KERNEL_MODULES),
                        help="kernel modules (default: all of them)")
    parser.add_argument("--output", type=Path, default=None, help="cache directory (default: the kernel cache)")
    parser.add_argument("--force", action="store_true", help="rebuild extensions that are already there")
    parser.add_argument("--expect", help=argparse.SUPPRESS)  # the name the parent process computed
    args = parser.parse_args(argv)
    directory = args.output or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    for module_name in args.modules:
        try:
            path = directory / f"{_native_name(importlib.import_module(module_name))}{_SUFFIX}"
            if path.exists() and not args.force:
                print(path)
                continue
            with console.status(f"compiling the kernels of {module_name}"):
                print(build(module_name, directory, args.expect))
        except Exception as exc:  # numba's errors have no common base; say which module failed and stop
            print(f"python -m soc.core.kernels: cannot build {module_name}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    # run as soc.core.kernels, not __main__: the kernel modules declare their kernels with soc.core.kernels' own classes
    from soc.core.kernels import main as entry

    raise SystemExit(entry())
