"""Build the optional compiled hot path (``feeds/binance/_fast.pyx``, Cython).

Everything else is in pyproject.toml. The extension is optional: if Cython or a C compiler is
missing, or the build fails, the package installs without it and the pure-Python path (identical
results, slower) is used; ``AUTOTRADER_REQUIRE_EXT=1`` turns such a failure into an error (CI).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = os.environ.get("AUTOTRADER_REQUIRE_EXT") == "1"


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    def _skip(self, exc: Exception) -> None:
        if REQUIRE:
            raise exc
        sys.stderr.write(f"autotrader: compiled hot path not built ({exc}); using the pure-Python path\n")


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE:
            raise
        sys.stderr.write("autotrader: Cython unavailable; using the pure-Python path\n")
        return []
    ext = Extension(
        "feeds.binance._fast",
        ["feeds/binance/_fast.pyx"],  # includes _json.pxi, _book.pxi, _bars.pxi
        # no fused multiply-add: the book's sums must round exactly like the Python path's
        extra_compile_args=["-O2", "-ffp-contract=off"],
    )
    return cythonize([ext], compiler_directives={"language_level": "3"}, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
