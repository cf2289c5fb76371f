# SPDX-License-Identifier: GPL-3.0-or-later
"""Build and install the tripsense Python package.

The extension is compiled by cffi (API mode) from the C sources listed in
sources.txt, the same list CMake uses; see bindings/tripsense/_build_ffi.py.
"""
from setuptools import setup

ANALYSIS = ["pandas>=2.0", "matplotlib>=3.5"]
# `tripsense export --format parquet` writes through pyarrow
PARQUET = ["pandas>=2.0", "pyarrow"]

setup(
    name="tripsense",
    version="0.1.0",
    description="An adaptive circuit breaker with a C core, SQLite history "
    "and seasonal anomaly rules",
    long_description=open("docs/python.md", encoding="utf-8").read()
    if __import__("os").path.exists("docs/python.md")
    else "",
    long_description_content_type="text/markdown",
    author="tripsense developers",
    license="GPL-3.0-or-later",
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: C",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: Implementation :: CPython",
        "Topic :: Software Development :: Libraries",
        "Topic :: System :: Monitoring",
        "Typing :: Typed",
    ],
    python_requires=">=3.9",
    package_dir={"": "bindings"},
    packages=["tripsense"],
    package_data={"tripsense": ["py.typed", "_cdef.h"]},
    setup_requires=["cffi>=1.15"],
    cffi_modules=["bindings/tripsense/_build_ffi.py:ffibuilder"],
    install_requires=["cffi>=1.15", "numpy"],
    extras_require={
        "analysis": ANALYSIS,
        "parquet": PARQUET,
        # wheel: the packaging tests pip install with --no-build-isolation
        "test": ["pytest", "hypothesis", "wheel"] + ANALYSIS + PARQUET,
        "notebooks": ["nbmake", "nbclient", "ipykernel", "nbformat"] + ANALYSIS,
    },
    entry_points={"console_scripts": ["tripsense = tripsense.cli:main"]},
    zip_safe=False,
    # keep setuptools' objects apart from CMake's build tree
    options={"build": {"build_base": "build/python"}},
)
