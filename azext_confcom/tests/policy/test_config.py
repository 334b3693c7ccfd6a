"""Platform defaults (newest-version deltas over the bundled 1.2.7 internal_config.json) and lookups."""

from __future__ import annotations

from azext_confcom.policy import config
from azext_confcom.policy.documents import ci_get


def test_newest_deltas():
    assert config.default_fragments()[0]["minimum_svn"] == "4"
    assert config.pause_container()["signals"] == [9, 15]
    assert (config.DEFAULT_API_VERSION, config.DEFAULT_FRAMEWORK_VERSION) == ("0.11.0", "0.2.3")
    assert (config.PRERELEASE_API_VERSION, config.PRERELEASE_FRAMEWORK_VERSION) == ("0.12.0", "0.5.0")


def test_copies_are_independent():
    config.pause_container()["name"] = "changed"
    config.default_fragments()[0]["feed"] = "changed"
    assert config.pause_container()["name"] == "pause-container"
    assert config.default_fragments()[0]["feed"] == "mcr.microsoft.com/aci/aci-cc-infra-fragment"


def test_injected_env_rules_order():
    assert [r["pattern"] for r in config.injected_env_rules("aci")] == [
        "TERM=xterm", "(?i)(FABRIC)_.+=.+", "HOSTNAME=.+", "T(E)?MP=.+", "FabricPackageFileName=.+",
        "HostedServiceName=.+", "IDENTITY_API_VERSION=.+", "IDENTITY_HEADER=.+", "IDENTITY_SERVER_THUMBPRINT=.+",
        "azurecontainerinstance_restarted_by=.+"]
    assert len(config.injected_env_rules("vn2")) == 18
    assert len(config.injected_env_rules("vn2", workload_identity=True)) == 22


def test_sidecar_names_compare_the_part_before_the_first_colon():
    assert config.is_sidecar("mcr.microsoft.com/aci/msi-atlas-adapter:v1")
    assert config.is_sidecar("mcr.microsoft.com/aci/msi-atlas-adapter")
    assert not config.is_sidecar("mcr.microsoft.com/aci/msi-atlas-adapter-other:v1")


def test_ci_get_quirks():
    assert ci_get({"Name": "a"}, "name") == "a"
    assert ci_get({"name": "", "NAME": "b"}, "name") == ""  # falsy exact value: first case-insensitive match
    assert ci_get({"NAME": "b", "name": ""}, "name") == "b"
    assert ci_get(["not", "a", "dict"], "name") is None
    assert ci_get({}, "name") is None
