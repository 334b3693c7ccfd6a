"""--virtual-node-yaml reading: pods and workloads -> GroupSpecs, with the reference's VN2 rules."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.inputs.vn2 import existing_policies, load_vn2, read_vn2
from azext_confcom.policy.generate import PolicyOptions, generate_policies
from azext_confcom.policy.render import OutputType, render
from azext_confcom.policy.spec import EnvRule, ExecProcess, MountSpec
from azext_confcom.tests.policy.conftest import DISTROLESS

from azext_confcom.tests.imagebuild import File, ImageSpec

from .conftest import EXAMPLES, layer_hashes


def read(text: str, **kwargs):
    return read_vn2(textwrap.dedent(text), **kwargs)


def only_container(text: str, **kwargs):
    groups = read(text, **kwargs)
    assert len(groups) == 1 and len(groups[0].containers) == 1
    return groups[0].containers[0]


def never_asked(question: str) -> str:
    raise AssertionError(f"unexpected prompt: {question}")


def test_reference_example_reproduced_byte_for_byte(images):
    groups = load_vn2(str(EXAMPLES / "vn2_basic_command_args/virtual_node.yaml"), ask=never_asked)
    assert [g.name for g in groups] == ["basic-command-args"]
    policy = generate_policies(groups, PolicyOptions(prerelease=True), images.image_info, images.hasher)[0]
    expected = (EXAMPLES / "vn2_basic_command_args/policy.rego").read_text()
    # stored when the prerelease template had no trailing newline: one newline fewer
    assert render(policy, OutputType.PRETTY_PRINT) + "\n\n\n" == expected + "\n"


def test_reference_example_with_a_generated_image_and_local_layer_hashes(local_images):
    """Same sample, image built here (tar, hashed for real): only the id and the layer hash differ."""
    tag = "confcom/distroless-like:1"
    spec = ImageSpec(tags=[tag], config={"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
                     layers=[[File("etc", kind="dir"), File("etc/os-release", b"ID=azurelinux\n")]])
    images = local_images(spec)
    text = (EXAMPLES / "vn2_basic_command_args/virtual_node.yaml").read_text().replace(DISTROLESS, tag)
    policy = generate_policies(read_vn2(text), PolicyOptions(prerelease=True), images.image_info, images.hasher)[0]
    expected = ((EXAMPLES / "vn2_basic_command_args/policy.rego").read_text()
                .replace(DISTROLESS, tag)
                .replace("243e1b3ce08093f2f0d9cd6a9eafde8737f64fec105ed59c346d309fbe760b58", layer_hashes(spec)[0]))
    assert render(policy, OutputType.PRETTY_PRINT) + "\n\n\n" == expected + "\n"
    assert images.hashed == [tag]


def pod_yaml(extra: str = "") -> str:
    """A Pod with one container ``app``; ``extra`` is YAML added to that container."""
    return ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n"
            "  - name: app\n    image: registry.local/app:1\n" + textwrap.indent(textwrap.dedent(extra), "    "))


def pod(extra: str = "", **kwargs):
    return only_container(pod_yaml(extra), **kwargs)


@pytest.mark.parametrize("extra, entrypoint, args", [
    ("", None, None),
    ("command: [/bin/sh]", ["/bin/sh"], None),
    ("args: [-c, run]", None, ["-c", "run"]),
    ("command: [/bin/sh]\nargs: [-c, run]", ["/bin/sh"], ["-c", "run"]),
    ("command: []\nargs: []", None, None),   # empty lists do not override the image (1.7.2)
])
def test_command_is_entrypoint_and_args_are_cmd(extra, entrypoint, args):
    spec = pod(extra)
    assert (spec.entrypoint, spec.args, spec.scenario, spec.name) == (entrypoint, args, "vn2", "app")


def test_every_pod_like_kind_gives_one_group_in_file_order():
    text = """\
        apiVersion: v1
        kind: Service
        metadata: {name: svc}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: dep}
        spec:
          template:
            metadata: {labels: {app: x}}
            spec:
              containers: [{name: a, image: "img/a:1"}]
        ---
        kind: CronJob
        metadata: {name: cron}
        spec:
          jobTemplate:
            spec:
              template:
                spec:
                  initContainers: [{name: init, image: "img/init:1"}]
                  containers: [{name: c, image: "img/c:1"}]
        ---
        kind: StatefulSet
        metadata: {name: sts}
        spec: {template: {spec: {containers: [{name: s, image: "img/s:1"}]}}}
        ---
        kind: DaemonSet
        metadata: {name: ds}
        spec: {template: {spec: {containers: [{name: d, image: "img/d:1"}]}}}
        ---
        kind: ReplicaSet
        metadata: {name: rs}
        spec: {template: {spec: {containers: [{name: r, image: "img/r:1"}]}}}
        ---
        kind: Job
        metadata: {name: job}
        spec: {template: {spec: {containers: [{name: j, image: "img/j:1"}]}}}
        ---
        """
    groups = read(text)
    assert [g.name for g in groups] == ["dep", "cron", "sts", "ds", "rs", "job"]
    # containers first, then initContainers
    assert [c.name for c in groups[1].containers] == ["c", "init"]
    assert [c.image for g in groups for c in g.containers][:2] == ["img/a:1", "img/c:1"]


def test_env_values_special_values_field_and_resource_refs():
    spec = pod("""\
        env:
        - {name: PLAIN, value: hello}
        - {name: EMPTY, value: ""}
        - {name: THIM, value: "===VIRTUALNODE2.CC.THIM.endpoint==="}
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: CPU
          valueFrom: {resourceFieldRef: {containerName: app, resource: limits.cpu}}
        - name: MEM_UNSET
          valueFrom: {resourceFieldRef: {resource: requests.memory}}
        resources:
          limits: {cpu: 500m}
        """)
    assert spec.env_rules == [EnvRule("PLAIN=hello"), EnvRule("EMPTY="), EnvRule("THIM=.*", "re2"),
                              EnvRule("POD_IP=.*", "re2"), EnvRule("CPU=500m")]


def test_resource_ref_to_another_container_is_refused():
    with pytest.raises(UserInputError) as err:
        pod("""\
            env:
            - name: CPU
              valueFrom: {resourceFieldRef: {containerName: other, resource: limits.cpu}}
            """)
    assert err.value.message == "Container names other than the current container are not currently supported: other"


CONFIG_AND_SECRET = """\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {mode: fast}
    binaryData: {blob: aGVsbG8=}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: creds}
    data: {password: czNjcmV0}
    stringData: {token: plain-token}
    ---
    """


def test_config_map_and_secret_values_resolved_from_the_same_file():
    spec = only_container(textwrap.dedent(CONFIG_AND_SECRET) + pod_yaml("""\
        env:
        - name: MODE
          valueFrom: {configMapKeyRef: {name: settings, key: mode}}
        - name: BLOB
          valueFrom: {configMapKeyRef: {name: settings, key: blob}}
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: creds, key: password}}
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: creds, key: token}}
        """), ask=never_asked)
    assert [r.pattern for r in spec.env_rules] == ["MODE=fast", "BLOB=hello", "PASSWORD=s3cret", "TOKEN=plain-token"]


MISSING_REFS = pod_yaml("""\
    env:
    - name: A
      valueFrom: {configMapKeyRef: {name: absent-map, key: a}}
    - name: B
      valueFrom: {configMapKeyRef: {name: absent-map, key: b}}
    - name: S
      valueFrom: {secretKeyRef: {name: absent-secret, key: s}}
    """)


def test_missing_references_ask_once_per_resource_and_wildcard_on_yes():
    questions = []

    def answer(question: str) -> str:
        questions.append(question)
        return "y"

    spec = only_container(MISSING_REFS, ask=answer)
    assert questions == ["Would you like to use a wildcard value for ConfigMap absent-map? (y/n): ",
                         "Would you like to use a wildcard value for Secret absent-secret? (y/n): "]
    assert spec.env_rules == [EnvRule("A=.*", "re2"), EnvRule("B=.*", "re2"), EnvRule("S=.*", "re2")]


def test_approve_wildcards_answers_without_asking():
    spec = only_container(MISSING_REFS, approve_wildcards=True, ask=never_asked)
    assert [r.strategy for r in spec.env_rules] == ["re2", "re2", "re2"]


def test_declined_config_map_is_an_empty_value_but_declined_secret_is_an_error():
    answers = iter(["n", "n"])
    with pytest.raises(UserInputError) as err:
        only_container(MISSING_REFS, ask=lambda q: next(answers))
    assert err.value.message == ("Secret S needs a value. Either attach the Secret resource to the yaml file "
                                 "or use a wildcard.")
    declined_map = pod_yaml("""\
        env:
        - name: A
          valueFrom: {configMapKeyRef: {name: absent-map, key: a}}
        - name: B
          valueFrom: {configMapKeyRef: {name: absent-map, key: b}}
        """)
    asked = []
    spec = only_container(declined_map, ask=lambda q: asked.append(q) or "n")
    assert len(asked) == 1 and spec.env_rules == [EnvRule("A="), EnvRule("B=")]


def test_closed_stdin_is_an_error_saying_how_to_answer():
    def eof(question: str) -> str:
        raise EOFError

    with pytest.raises(UserInputError, match="standard input is closed") as err:
        only_container(MISSING_REFS, ask=eof)
    assert "--approve-wildcards" in err.value.hint


def test_volume_mounts_are_empty_dirs_read_only_types_forced_with_a_warning(caplog):
    text = """\
        kind: StatefulSet
        metadata: {name: db}
        spec:
          volumeClaimTemplates:
          - metadata: {name: shared}
            spec: {accessModes: [ReadOnlyMany]}
          - metadata: {name: data}
            spec: {accessModes: [ReadWriteOnce]}
          template:
            spec:
              volumes:
              - {name: cfg, configMap: {name: settings}}
              - {name: scratch, emptyDir: {}}
              - {name: token, projected: {sources: []}}
              containers:
              - name: db
                image: img/db:1
                volumeMounts:
                - {name: cfg, mountPath: /etc/cfg, readOnly: false}
                - {name: scratch, mountPath: /scratch}
                - {name: scratch, mountPath: /scratch-ro, readOnly: true}
                - {name: token, mountPath: /token}
                - {name: shared, mountPath: /shared}
                - {name: data, mountPath: /data}
                - {name: undeclared, mountPath: /elsewhere}
        """
    with caplog.at_level("WARNING"):
        spec = only_container(text)
    assert spec.mounts == [MountSpec("/etc/cfg", "emptyDir", True), MountSpec("/scratch", "emptyDir", False),
                           MountSpec("/scratch-ro", "emptyDir", True), MountSpec("/token", "emptyDir", True),
                           MountSpec("/shared", "emptyDir", True), MountSpec("/data", "emptyDir", False),
                           MountSpec("/elsewhere", "emptyDir", False)]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["Volume 'cfg' in container 'db' is of a type that requires readOnly access "
                        "(configMap, secret, downwardAPI, projected), but readOnly: false was specified. "
                        "Enforcing readOnly: true for policy generation."]


def test_pod_and_container_security_context_merge_container_wins():
    text = """\
        kind: Pod
        metadata: {name: p}
        spec:
          securityContext: {runAsUser: 1000, runAsGroup: 3000}
          containers:
          - name: app
            image: img/app:1
            securityContext:
              runAsUser: 2000
              allowPrivilegeEscalation: false
              capabilities: {add: [CAP_SYS_TIME], drop: [CAP_KILL]}
        """
    spec = only_container(text)
    assert (spec.run_as_user, spec.run_as_group, spec.no_new_privileges) == (2000, 3000, True)
    assert (spec.capabilities_add, spec.capabilities_drop, spec.privileged) == (["CAP_SYS_TIME"], ["CAP_KILL"], False)


def test_privileged_container_gets_the_privileged_vn2_mounts_after_its_own():
    spec = pod("""\
        securityContext: {privileged: true}
        volumeMounts: [{name: v, mountPath: /v}]
        """)
    assert spec.privileged
    assert [m.destination for m in spec.mounts] == ["/v", "/sys/fs/cgroup", "/sys"]


def test_workload_identity_label_adds_identity_env_after_and_token_mount_before_the_users():
    text = """\
        kind: Deployment
        metadata: {name: wi}
        spec:
          template:
            metadata:
              labels: {azure.workload.identity/use: "true"}
            spec:
              volumes: [{name: v, emptyDir: {}}]
              containers:
              - name: app
                image: img/app:1
                env: [{name: MINE, value: "1"}]
                volumeMounts: [{name: v, mountPath: /v}]
        """
    spec = only_container(text)
    assert spec.workload_identity
    assert [r.pattern for r in spec.env_rules] == [
        "MINE=1", "AZURE_CLIENT_ID=.+", "AZURE_TENANT_ID=.+", "AZURE_FEDERATED_TOKEN_FILE=.+",
        "AZURE_AUTHORITY_HOST=.+"]
    assert spec.mounts == [MountSpec("/var/run/secrets/azure/tokens", "emptyDir", True),
                           MountSpec("/v", "emptyDir", False)]


def test_exec_probes_and_lifecycle_hooks_in_reference_order():
    spec = pod("""\
        livenessProbe: {exec: {command: [check, live]}}
        readinessProbe: {exec: {command: [check, ready]}}
        startupProbe: {exec: {command: [check, live]}}
        lifecycle:
          postStart: {exec: {command: [hook, start]}}
          preStop: {exec: {command: [hook, stop]}}
        """)
    # the repeated [check, live] is kept here; the generator collapses it (test_generate.py)
    assert spec.exec_processes == [ExecProcess(["check", "live"]), ExecProcess(["check", "ready"]),
                                   ExecProcess(["check", "live"]), ExecProcess(["hook", "start"]),
                                   ExecProcess(["hook", "stop"])]
    assert pod("livenessProbe: {httpGet: {path: /, port: 80}}").exec_processes == []


@pytest.mark.parametrize("extra, message", [
    ("livenessProbe: {exec: {command: []}}", "Probes must have a 'command' declaration"),
    ("lifecycle: {preStop: {exec: {command: []}}}", "Hooks must have a 'command' declaration"),
])
def test_exec_without_command(extra, message):
    with pytest.raises(UserInputError) as err:
        pod(extra)
    assert err.value.message == message


@pytest.mark.parametrize("text, message", [
    ("kind: Pod\nmetadata: {name: p}\n", "YAML file does not contain a spec field"),
    ("kind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n", "YAML file does not contain a spec field"),
    ("kind: Pod\nspec: {containers: []}\n", "YAML file does not contain a containers field"),
    ("kind: Pod\nspec: {containers: [{name: a}]}\n", "Container does not have an image field"),
])
def test_structural_errors(text, message):
    with pytest.raises(UserInputError) as err:
        read_vn2(text)
    assert err.value.message == message


def test_malformed_yaml_quotes_the_file():
    text = "kind: Pod\nspec: [unclosed\n"
    with pytest.raises(UserInputError) as err:
        read_vn2(text)
    assert err.value.message == f"Invalid YAML formatting for data: \n{text}"
    assert "line" in err.value.hint


def test_no_pod_like_document_names_the_kinds_found():
    with pytest.raises(UserInputError) as err:
        read_vn2("kind: Service\nmetadata: {name: s}\n---\nkind: ConfigMap\n", source="svc.yaml")
    assert err.value.message == "No pod-creating resource found in svc.yaml (kinds found: ConfigMap, Service)"


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError) as err:
        load_vn2(str(tmp_path / "nope.yaml"))
    assert err.value.message == f"File not found at path: {tmp_path / 'nope.yaml'}"


def test_existing_policy_of_pod_template_is_kept_for_diff_and_printing(tmp_path):
    policy = base64.b64encode(b"package policy\n").decode()
    path = tmp_path / "d.yaml"
    path.write_text(textwrap.dedent(f"""\
        kind: Deployment
        metadata: {{name: dep}}
        spec:
          template:
            metadata:
              name: dep-pod
              annotations: {{microsoft.containerinstance.virtualnode.ccepolicy: {policy}}}
            spec: {{containers: [{{name: a, image: "img/a:1"}}]}}
        """))
    assert load_vn2(str(path))[0].existing_policy == policy
    assert existing_policies(str(path)) == [("dep-pod", policy)]


@pytest.mark.parametrize("metadata, message", [
    ("", "Metadata not found in Virtual Node YAML resource"),
    ("metadata: {name: p}", "Annotations not found in Virtual Node YAML resource: p"),
    ("metadata: {name: p, annotations: {other: x}}", "Policy not found in Virtual Node YAML resource: p"),
])
def test_printing_existing_policy_errors(tmp_path, metadata, message):
    path = tmp_path / "p.yaml"
    path.write_text(f"kind: Pod\n{metadata}\nspec: {{containers: [{{name: a, image: i}}]}}\n")
    with pytest.raises(UserInputError) as err:
        existing_policies(str(path))
    assert err.value.message == message


def test_the_generator_places_vn2_defaults_after_the_readers_mounts(images):
    """Whole-policy check of a VN2 container: user mounts, then resolv.conf and the VN2 defaults."""
    text = f"""\
        kind: Pod
        metadata: {{name: p}}
        spec:
          volumes: [{{name: v, secret: {{secretName: s}}}}]
          containers:
          - name: app
            image: "{DISTROLESS}"
            volumeMounts: [{{name: v, mountPath: /secret}}]
        """
    groups = read(text)
    policy = generate_policies(groups, PolicyOptions(), images.image_info, images.hasher)[0]
    container = policy.containers[0]
    assert [(m["destination"], m["options"][2], m["source"]) for m in container["mounts"]] == [
        ("/secret", "ro", "sandbox:///tmp/atlas/emptydir/.+"),
        ("/etc/resolv.conf", "rw", "sandbox:///tmp/atlas/emptydir/.+"),
        ("/var/run/secrets/kubernetes.io/serviceaccount", "ro", "sandbox:///tmp/atlas/emptydir/.+"),
        ("/etc/hosts", "rw", "sandbox:///tmp/atlas/emptydir/.+"),
        ("/dev/termination-log", "rw", "sandbox:///tmp/atlas/emptydir/.+"),
        ("/etc/hostname", "rw", "sandbox:///tmp/atlas/emptydir/.+")]
    assert json.loads(json.dumps(container["env_rules"]))[-1]["pattern"] == "[A-Z0-9_]+_PORT_[0-9]+_TCP_ADDR=.+"


def test_privileged_workload_identity_pod_has_each_mount_once_in_reference_order(images):
    text = f"""\
        kind: Pod
        metadata:
          name: p
          labels: {{azure.workload.identity/use: "true"}}
        spec:
          containers:
          - name: a
            image: "{DISTROLESS}"
            securityContext: {{privileged: true}}
            volumeMounts: [{{name: v, mountPath: /v}}]
        """
    policy = generate_policies(read(text), PolicyOptions(), images.image_info, images.hasher)[0]
    assert [m["destination"] for m in policy.containers[0]["mounts"]] == [
        "/var/run/secrets/azure/tokens", "/v", "/sys/fs/cgroup", "/sys", "/etc/resolv.conf",
        "/var/run/secrets/kubernetes.io/serviceaccount", "/etc/hosts", "/dev/termination-log", "/etc/hostname"]


@pytest.mark.parametrize("extra, message", [
    ("env: {A: b}", "env of container app must be a list of mappings"),
    ("env: [A=b]", "env of container app must be a list of mappings"),
    ("volumeMounts: [/data]", "volumeMounts of container app must be a list of mappings"),
    ("volumeMounts: [{name: v}]", "volumeMount v of container app has no mountPath"),
    ("command: /bin/sh", 'Field ["containers"]["entrypoint"] must be list of Strings.'),
    ("args: --fast", 'Field ["containers"]["command"] must be list of Strings.'),
    ("securityContext: privileged", "securityContext of container app must be a mapping"),
])
def test_malformed_lists_are_named(extra, message):
    with pytest.raises(UserInputError) as err:
        pod(extra)
    assert err.value.message == message


def test_containers_that_are_not_mappings():
    with pytest.raises(UserInputError) as err:
        read_vn2("kind: Pod\nspec:\n  containers: [nginx]\n")
    assert err.value.message == "spec.containers must be a list of mappings"
