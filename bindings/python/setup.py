"""Build step: bundles librarch_logging.so into the package (redarch_logging_client/_lib/).

The library is taken from, in order: $RARCH_LOGGING_LIB; the repository's
target/release/librarch_logging.so (the repository is $RARCH_LOGGING_REPO or two levels up);
else `cargo build --release` is run in the repository and its output is copied.

The wheel is tagged py3-none-<platform>: the library is loaded with ctypes, not built against
one Python, so one wheel serves every CPython 3 (and PyPy) of the platform. `make dist`
(packaging/dist.sh) builds it with the stripped library and has auditwheel give it its
manylinux tag.
"""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = "librarch_logging.so"


def _find_or_build_library():
    env = os.environ.get("RARCH_LOGGING_LIB")
    if env and os.path.isfile(env):
        return env
    repo = os.environ.get("RARCH_LOGGING_REPO") or os.path.abspath(os.path.join(HERE, "..", ".."))
    built = os.path.join(repo, "target", "release", LIB)
    if os.path.isfile(built):
        return built
    if not os.path.isfile(os.path.join(repo, "Cargo.toml")):
        raise RuntimeError(
            f"redarch_logging_client: no {LIB} to bundle: set RARCH_LOGGING_LIB to the library, "
            f"or RARCH_LOGGING_REPO to a rarch-logging checkout (looked in {repo})"
        )
    cargo = os.environ.get("CARGO") or shutil.which("cargo") or os.path.expanduser(
        "~/.cargo/bin/cargo")
    print(f"redarch_logging_client: building {LIB} with {cargo} build --release in {repo}")
    subprocess.check_call([cargo, "build", "--release"], cwd=repo)
    if not os.path.isfile(built):
        raise RuntimeError(f"cargo build --release did not produce {built}")
    return built


class build_py_with_library(build_py):
    def run(self):
        super().run()
        src = _find_or_build_library()
        dest = os.path.join(self.build_lib, "redarch_logging_client", "_lib")
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(src, os.path.join(dest, LIB))
        os.chmod(os.path.join(dest, LIB), 0o755)


try:  # setuptools >= 70.1 has bdist_wheel; before it, the wheel package did
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover
    from wheel.bdist_wheel import bdist_wheel


class bdist_wheel_any_python(bdist_wheel):
    """Platform-specific (it holds a native library) but for any Python 3: py3-none-<plat>."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    """The wheel holds a native library: mark it platform-specific."""

    def has_ext_modules(self):
        return True


setup(
    cmdclass={"build_py": build_py_with_library, "bdist_wheel": bdist_wheel_any_python},
    distclass=BinaryDistribution,
)
