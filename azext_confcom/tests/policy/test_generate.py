"""Merging specs with image configs and platform defaults (reference policy-format.md §3, §5)."""

from __future__ import annotations

import logging

import pytest

from azext_confcom.errors import ImageError, UserInputError
from azext_confcom.policy import config
from azext_confcom.policy.generate import PolicyOptions, generate_policy
from azext_confcom.policy.spec import ContainerSpec, EnvRule, ExecProcess, GroupSpec, MountSpec

from .conftest import PATH_ENV, RecordedImages

LAYER = "ab" * 32
SIDECAR = "mcr.microsoft.com/aci/msi-atlas-adapter:1.0"


def generate(*specs, image_config=None, options=None, layers=None, group=None):
    """Generate one policy for ``specs``; every image has ``image_config`` and one layer."""
    refs = {s.image if ":" in s.image else s.image + ":latest" for s in specs}
    images = RecordedImages(configs={r: {"architecture": "amd64", "config": dict(image_config or {})} for r in refs},
                            layers={r: [LAYER] for r in refs} | (layers or {}))
    group = group or GroupSpec(name="g", containers=list(specs))
    return generate_policy(group, options or PolicyOptions(), images.image_info, images.hasher)


def one(spec=None, **kwargs) -> dict:
    return generate(spec or ContainerSpec(image="app:1", name="app"), **kwargs).containers[0]


# ----------------------------------------------------------------------------- command

@pytest.mark.parametrize("spec_command, image, expected", [
    (None, {"Entrypoint": ["/ep"], "Cmd": ["arg"]}, ["/ep", "arg"]),
    (None, {"Entrypoint": ["/ep"]}, ["/ep"]),
    (None, {"Cmd": ["/cmd"]}, ["/cmd"]),
    (None, {}, None),
    (["/mine"], {"Entrypoint": ["/ep"], "Cmd": ["arg"]}, ["/mine"]),
])
def test_arm_command(spec_command, image, expected):
    assert one(ContainerSpec(image="app:1", name="a", entrypoint=spec_command), image_config=image)["command"] == expected


@pytest.mark.parametrize("entrypoint, args, expected", [
    (["/c"], ["x"], ["/c", "x"]), (["/c"], None, ["/c"]), (None, ["x"], ["/ep", "x"]), (None, None, ["/ep", "arg"]),
])
def test_k8s_command_and_args(entrypoint, args, expected):
    spec = ContainerSpec(image="app:1", name="a", entrypoint=entrypoint, args=args, scenario="vn2")
    assert one(spec, image_config={"Entrypoint": ["/ep"], "Cmd": ["arg"]})["command"] == expected


# ----------------------------------------------------------------------------- env rules

def test_env_order_and_override_by_name():
    spec = ContainerSpec(image="app:1", name="a", env_rules=[EnvRule("B=template"), EnvRule("TERM=vt100"),
                                                               EnvRule("HOSTNAME=h")])
    rules = one(spec, image_config={"Env": ["A=image", "B=image", "C=x=y"]})["env_rules"]
    patterns = [r["pattern"] for r in rules]
    assert patterns[:5] == ["B=template", "TERM=vt100", "HOSTNAME=h", "A=image", "C=x=y"]
    assert "TERM=xterm" not in patterns and "HOSTNAME=.+" not in patterns
    injected = [r["pattern"] for r in config.injected_env_rules("aci")]
    assert patterns[5:] == [p for p in injected if p.split("=")[0] not in ("TERM", "HOSTNAME")]
    assert rules[3] == {"pattern": "A=image", "required": False, "strategy": "string"}


def test_vn2_and_workload_identity_env_rules():
    spec = ContainerSpec(image="app:1", name="a", scenario="vn2", workload_identity=True)
    patterns = [r["pattern"] for r in one(spec)["env_rules"]]
    assert patterns[-12:-4][0] == "[A-Z0-9_]+_SERVICE_HOST=.+"
    assert patterns[-4:] == ["AZURE_CLIENT_ID=.+", "AZURE_TENANT_ID=.+", "AZURE_FEDERATED_TOKEN_FILE=.+",
                             "AZURE_AUTHORITY_HOST=.+"]


def test_debug_mode_adds_no_env_rule():
    assert one(options=PolicyOptions(debug_mode=True))["env_rules"] == one()["env_rules"]


# ----------------------------------------------------------------------------- working dir, user, signals

@pytest.mark.parametrize("spec_dir, image_dir, expected", [(None, "/srv", "/srv"), (None, "", "/"),
                                                            ("/mine", "/srv", "/mine")])
def test_working_dir(spec_dir, image_dir, expected):
    spec = ContainerSpec(image="app:1", name="a", working_dir=spec_dir)
    assert one(spec, image_config={"WorkingDir": image_dir})["working_dir"] == expected


@pytest.mark.parametrize("image_user, user, group", [
    ("1000:1000", {"pattern": "1000", "strategy": "id"}, {"pattern": "1000", "strategy": "id"}),
    ("nobody", {"pattern": "nobody", "strategy": "name"}, {"pattern": "", "strategy": "any"}),
    ("app:100", {"pattern": "app", "strategy": "name"}, {"pattern": "100", "strategy": "id"}),
    ("", {"pattern": "", "strategy": "any"}, {"pattern": "", "strategy": "any"}),
])
def test_user_from_image(image_user, user, group):
    out = one(image_config={"User": image_user})["user"]
    assert out == {"user_idname": user, "group_idnames": [group], "umask": "0022"}


def test_security_context_user_wins_over_image():
    out = one(ContainerSpec(image="app:1", name="a", run_as_group=5), image_config={"User": "1000:1000"})["user"]
    assert out == {"user_idname": {"pattern": "", "strategy": "any"},
                   "group_idnames": [{"pattern": "5", "strategy": "id"}], "umask": "0022"}


@pytest.mark.parametrize("stop_signal, expected", [(None, [9, 15]), ("SIGQUIT", [3]), ("sigint", [2]), ("9", [9])])
def test_signals(stop_signal, expected):
    image = {"StopSignal": stop_signal} if stop_signal else {}
    assert one(image_config=image)["signals"] == expected


def test_unsupported_architecture():
    images = RecordedImages(configs={"app:1": {"architecture": "arm64", "config": {}}}, layers={"app:1": [LAYER]})
    group = GroupSpec(name="g", containers=[ContainerSpec(image="app:1", name="a")])
    with pytest.raises(ImageError) as info:
        generate_policy(group, PolicyOptions(), images.image_info, images.hasher)
    assert info.value.message == ("app:1 is attempting to build for unsupported architecture: arm64. "
                                  "Only amd64 is supported by Confidential ACI")


# ----------------------------------------------------------------------------- capabilities, privileges

def test_unprivileged_capabilities_sorted():
    caps = one()["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == sorted(config.unprivileged_capabilities())
    assert caps["inheritable"] == caps["ambient"] == []


def test_add_and_drop():
    spec = ContainerSpec(image="app:1", name="a", capabilities_add=["CAP_SYS_TIME", "CAP_CHOWN"],
                         capabilities_drop=["CAP_KILL"])
    caps = one(spec)["capabilities"]
    expected = sorted(set(config.unprivileged_capabilities()) - {"CAP_KILL"} | {"CAP_SYS_TIME"})
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == expected
    assert caps["inheritable"] == caps["ambient"] == []


def test_privileged():
    spec = ContainerSpec(image="app:1", name="a", privileged=True, capabilities_add=["CAP_NEW"])
    out = one(spec)
    caps = out["capabilities"]
    expected = sorted(config.privileged_capabilities() + ["CAP_NEW"])
    assert len(config.privileged_capabilities()) == 41
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == caps["inheritable"] == expected
    assert caps["ambient"] == []
    assert out["allow_elevated"] is True


def test_no_new_privileges_and_seccomp_pass_through():
    out = one(ContainerSpec(image="app:1", name="a", no_new_privileges=True, seccomp_profile_sha256="ff"))
    assert (out["no_new_privileges"], out["seccomp_profile_sha256"]) == (True, "ff")


# ----------------------------------------------------------------------------- mounts, exec processes

def test_mounts():
    spec = ContainerSpec(image="app:1", name="a", mounts=[
        MountSpec("/ro", "secret", readonly=True), MountSpec("/opts", "emptyDir", options=["rbind", "ro"])])
    assert one(spec)["mounts"] == [
        {"destination": "/ro", "options": ["rbind", "rshared", "ro"],
         "source": "sandbox:///tmp/atlas/secretsVolume/.+", "type": "bind"},
        {"destination": "/opts", "options": ["rbind", "ro"], "source": "sandbox:///tmp/atlas/emptydir/.+", "type": "bind"},
        {"destination": "/etc/resolv.conf", "options": ["rbind", "rshared", "rw"],
         "source": "sandbox:///tmp/atlas/resolvconf/.+", "type": "bind"},
    ]


def test_vn2_privileged_default_mounts():
    spec = ContainerSpec(image="app:1", name="a", scenario="vn2", privileged=True)
    assert [m["destination"] for m in one(spec)["mounts"]] == [
        "/etc/resolv.conf", "/var/run/secrets/kubernetes.io/serviceaccount", "/etc/hosts", "/dev/termination-log",
        "/etc/hostname", "/sys/fs/cgroup", "/sys"]


def test_unknown_mount_type():
    with pytest.raises(UserInputError) as info:
        one(ContainerSpec(image="app:1", name="a", mounts=[MountSpec("/o", "")]))
    assert "/o" in info.value.message


def test_exec_processes_deduplicated_then_debug_shells():
    spec = ContainerSpec(image="app:1", name="a", exec_processes=[ExecProcess(["echo", "hi"]), ExecProcess(["ls"]),
                                                                 ExecProcess(["echo", "hi"])])
    assert one(spec)["exec_processes"] == [{"command": ["echo", "hi"], "signals": []}, {"command": ["ls"], "signals": []}]
    debug = one(spec, options=PolicyOptions(debug_mode=True))["exec_processes"]
    assert [p["command"] for p in debug] == [["echo", "hi"], ["ls"], ["/bin/sh"], ["/bin/bash"]]


# ----------------------------------------------------------------------------- policy-level options

def test_debug_mode_flags():
    policy = generate(ContainerSpec(image="app:1", name="a"), options=PolicyOptions(debug_mode=True))
    assert policy.allow == {"allow_properties_access": True, "allow_dump_stacks": True, "allow_runtime_logging": True,
                            "allow_environment_variable_dropping": True, "allow_unencrypted_scratch": False,
                            "allow_capability_dropping": True}


def test_disable_stdio_everywhere():
    policy = generate(ContainerSpec(image="app:1", name="a"), options=PolicyOptions(disable_stdio=True))
    assert [c["allow_stdio_access"] for c in policy.all_containers] == [False, False]


def test_spec_stdio_flag():
    assert one(ContainerSpec(image="app:1", name="a", allow_stdio_access=False))["allow_stdio_access"] is False


def test_omit_id():
    policy = generate(ContainerSpec(image="app:1", name="app:1"), ContainerSpec(image="app:2", name="two"),
                      options=PolicyOptions(omit_id=True))
    first, second = policy.containers
    assert "id" not in first and "name" not in first
    assert "id" not in second and second["name"] == "two"


def test_containers_without_layers_are_dropped():
    policy = generate(ContainerSpec(image="empty:1", name="e"), ContainerSpec(image="app:1", name="a"),
                      layers={"empty:1": []})
    assert [c["name"] for c in policy.all_containers] == ["a", "pause-container"]
    only_empty = generate(ContainerSpec(image="empty:1", name="e"), layers={"empty:1": []})
    assert [c["name"] for c in only_empty.all_containers] == ["pause-container"]


def test_pause_container():
    pause = generate(ContainerSpec(image="app:1", name="a")).pause
    assert "id" not in pause and pause["signals"] == [9, 15]
    assert pause["capabilities"]["bounding"][:3] == ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID"]  # config order
    assert pause["env_rules"][0] == {"pattern": PATH_ENV, "strategy": "string", "required": True}


def test_sidecars():
    sidecar = ContainerSpec(image=SIDECAR, name="side")
    only = generate(sidecar, image_config={"Env": ["X=1"], "Cmd": ["/run"]})
    assert only.sidecar is True and only.pause is None
    assert only.containers[0]["env_rules"] == [] and only.containers[0]["mounts"] == []
    assert only.containers[0]["command"] == []
    merged = generate(sidecar, image_config={"Cmd": ["/run"]}, options=PolicyOptions(image_source=True))
    assert merged.containers[0]["command"] == ["/run"]
    mixed = generate(ContainerSpec(image="app:1", name="a"), sidecar)
    assert mixed.sidecar is False and mixed.pause is not None


def test_fragments():
    extra = {"feed": "f", "issuer": "i", "minimum_svn": "1", "includes": ["containers"], "path": "./x.cose"}
    spec = ContainerSpec(image="app:1", name="a")
    default = generate(spec).fragments
    assert default == config.default_fragments() and default[0]["minimum_svn"] == "4"
    with_extra = generate(spec, options=PolicyOptions(fragment_imports=[extra], infrastructure_svn="7")).fragments
    assert [f["feed"] for f in with_extra] == ["mcr.microsoft.com/aci/aci-cc-infra-fragment", "f"]
    assert with_extra[0]["minimum_svn"] == "7" and "path" not in with_extra[1]
    first = generate(spec, options=PolicyOptions(fragment_imports=[extra], fragments_first=True,
                                                 infrastructure_svn="7")).fragments
    assert [(f["feed"], f["minimum_svn"]) for f in first] == [("f", "7"), ("mcr.microsoft.com/aci/aci-cc-infra-fragment", "4")]
    assert generate(spec, options=PolicyOptions(exclude_default_fragments=True)).fragments == []
    tagged = GroupSpec(name="g", containers=[spec], exclude_default_fragments=True, fragments=[extra])
    assert [f["feed"] for f in generate(spec, group=tagged).fragments] == ["f"]


def test_prerelease_versions():
    policy = generate(ContainerSpec(image="app:1", name="a"), options=PolicyOptions(prerelease=True))
    assert (policy.api_version, policy.framework_version) == ("0.12.0", "0.5.0")
    assert policy.allow["allow_host_network"] is False
    default = generate(ContainerSpec(image="app:1", name="a"))
    assert (default.api_version, default.framework_version) == ("0.11.0", "0.2.3")
    assert "allow_host_network" not in default.allow


def test_latest_tag_warning_after_progress_bar(caplog, capsys):
    caplog.set_level(logging.WARNING)
    policy = generate(ContainerSpec(image="app", name="a"), ContainerSpec(image="app:latest", name="b"))
    assert [c["id"] for c in policy.containers] == ["app", "app:latest"]
    assert [r.getMessage() for r in caplog.records] == ['Using image tag "latest" is not recommended'] * 2
    assert "Pulling and hashing images..." in capsys.readouterr().err


# ----------------------------------------------------------------------------- hashing several images

def test_distinct_images_are_hashed_side_by_side_once_each():
    import threading

    barrier = threading.Barrier(2, timeout=10)
    calls = []

    def hasher(ref):
        calls.append(ref)
        barrier.wait()  # both images must be in flight at once, or this times out
        return [LAYER]

    images = RecordedImages(configs={r: {"architecture": "amd64", "config": {}} for r in ("a:1", "b:1")})
    group = GroupSpec(name="g", containers=[ContainerSpec(image="a:1", name="x"), ContainerSpec(image="b:1", name="y"),
                                            ContainerSpec(image="a:1", name="z")])
    policy = generate_policy(group, PolicyOptions(), images.image_info, hasher)
    assert [c["name"] for c in policy.containers] == ["x", "y", "z"]
    assert sorted(calls) == ["a:1", "b:1"]


def test_first_failing_image_in_template_order_is_reported(caplog):
    from azext_confcom.errors import HashingError
    from azext_confcom.policy.generate import defer_warning

    def hasher(ref):
        defer_warning(f"hashing {ref}")
        raise HashingError(f"failed {ref}")

    images = RecordedImages(configs={r: {"architecture": "amd64", "config": {}} for r in ("a:1", "b:1")})
    group = GroupSpec(name="g", containers=[ContainerSpec(image="a:1", name="x"), ContainerSpec(image="b:1", name="y")])
    caplog.set_level(logging.WARNING)
    with pytest.raises(HashingError) as info:
        generate_policy(group, PolicyOptions(), images.image_info, hasher)
    assert info.value.message == "failed a:1"
    # warnings queued inside hashing threads still come out (b:1 may have been cancelled before starting)
    assert "hashing a:1" in [r.getMessage() for r in caplog.records]
