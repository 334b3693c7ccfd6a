"""Packaging for the confcom Azure CLI extension (installed with `az extension add --source`).

Runtime dependencies are declared in setup.cfg ([options] install_requires) so scripts/setup.sh
installs the same list into the development venv; azure-cli-core itself is provided by `az`.
"""

from setuptools import find_packages, setup

VERSION = "2.3.0"

setup(
    name="confcom",
    version=VERSION,
    description="Confidential container security policy tools for Azure Container Instances",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    author="confcom developers",
    url="https://example.invalid/confcom",
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
    ],
    python_requires=">=3.9",
    packages=find_packages(exclude=["*.tests", "*.tests.*", "tests", "samples", "benchmarks"]),
    package_data={"azext_confcom": ["azext_metadata.json", "data/*", "data/**/*"]},
    scripts=["bin/dmverity-vhd"],
)
