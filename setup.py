"""Packaging for the confcom Azure CLI extension (installed with `az extension add --source`)."""

from setuptools import find_packages, setup

VERSION = "2.3.0"

DEPENDENCIES = [
    "docker>=6.1.0",
    "requests>=2.25",
    "pydash>=7.0",
    "tqdm>=4.65",
    "deepdiff~=8.6",
    "PyYAML>=6.0.1",   # VN2 pod specs (--virtual-node-yaml), as the reference extension
]

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
    packages=find_packages(exclude=["*.tests", "*.tests.*"]),
    install_requires=DEPENDENCIES,
    package_data={"azext_confcom": ["azext_metadata.json", "data/*", "data/**/*"]},
    scripts=["bin/dmverity-vhd"],
)
