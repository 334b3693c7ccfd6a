"""VN2 injection: the policy annotation goes into the pod (template), the rest of the file stays."""

from __future__ import annotations

import os
import textwrap

import pytest
import yaml

from azext_confcom.errors import UserInputError
from azext_confcom.inputs import inject_into_yaml, read_existing_policies
from azext_confcom.inputs.vn2 import POLICY_ANNOTATION, inject_policies

POLICY = "cGFja2FnZSBwb2xpY3kK+/=="


def write(tmp_path, text: str, name: str = "pods.yaml"):
    path = tmp_path / name
    path.write_bytes(textwrap.dedent(text).encode())
    return path


def never_asked(question: str) -> str:
    raise AssertionError(f"unexpected prompt: {question}")


def test_pod_without_annotations_keeps_comments_order_and_other_documents(tmp_path):
    path = write(tmp_path, """\
        # leading comment
        apiVersion: v1
        kind: ConfigMap   # not a pod
        metadata: {name: settings}
        data: {z: "1", a: "2"}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: web   # the pod
          labels:
            app: web
        spec:
          containers:
          - name: app
            image: img/app:1
        """)
    assert inject_policies(str(path), {0: POLICY}, ask=never_asked)[0]
    assert path.read_text() == textwrap.dedent(f"""\
        # leading comment
        apiVersion: v1
        kind: ConfigMap   # not a pod
        metadata: {{name: settings}}
        data: {{z: "1", a: "2"}}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          annotations:
            {POLICY_ANNOTATION}: {POLICY}
          name: web   # the pod
          labels:
            app: web
        spec:
          containers:
          - name: app
            image: img/app:1
        """)
    assert read_existing_policies(str(path)) == [("web", POLICY)]


def test_deployment_gets_the_annotation_on_its_pod_template(tmp_path):
    path = write(tmp_path, """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: dep
        spec:
          replicas: 2
          template:
            metadata:
              labels: {app: dep}
              annotations:
                keep.me/too: "yes"
            spec:
              containers: [{name: a, image: "img/a:1"}]
        """)
    assert inject_into_yaml(str(path), {0: POLICY}, ask=never_asked)[0]
    text = path.read_text()
    assert f"      annotations:\n        {POLICY_ANNOTATION}: {POLICY}\n        keep.me/too: \"yes\"\n" in text
    document = yaml.safe_load(text)
    assert "annotations" not in document["metadata"]
    assert document["spec"]["template"]["metadata"]["annotations"] == {POLICY_ANNOTATION: POLICY, "keep.me/too": "yes"}


def test_cron_job_without_template_metadata_and_second_pod_of_the_file(tmp_path):
    path = write(tmp_path, """\
        kind: Pod
        metadata: {name: first}
        spec: {containers: [{name: a, image: "img/a:1"}]}
        ---
        kind: CronJob
        metadata:
          name: cron
        spec:
          schedule: "* * * * *"
          jobTemplate:
            spec:
              template:
                spec:
                  containers:
                  - {name: c, image: "img/c:1"}
        """)
    before_first = path.read_text().split("---")[0]
    assert inject_policies(str(path), {1: POLICY}, ask=never_asked)[1]
    text = path.read_text()
    assert text.split("---")[0] == before_first
    template = list(yaml.safe_load_all(text))[1]["spec"]["jobTemplate"]["spec"]["template"]
    assert list(template) == ["metadata", "spec"]
    assert template["metadata"] == {"annotations": {POLICY_ANNOTATION: POLICY}}


@pytest.mark.parametrize("metadata", [
    "metadata:\n  name: p\n  annotations: {}\n",
    "metadata:\n  name: p\n  annotations:\n",
    "metadata: {name: p}\n",                          # flow style: falls back to re-dumping
    "metadata:\n  name: p\n  annotations: {a: b}\n",  # flow style annotations with entries
])
def test_unusual_metadata_layouts_still_get_exactly_the_annotation(tmp_path, metadata):
    path = write(tmp_path, f"kind: Pod\n{metadata}spec:\n  containers: [{{name: a, image: i}}]\n")
    original = yaml.safe_load(path.read_text())
    assert inject_policies(str(path), {0: POLICY}, ask=never_asked)[0]
    updated = yaml.safe_load(path.read_text())
    annotations = dict((original["metadata"].get("annotations") or {}), **{POLICY_ANNOTATION: POLICY})
    assert updated == dict(original, metadata=dict(original["metadata"], annotations=annotations))
    assert list(updated) == ["kind", "metadata", "spec"]


EXISTING = f"""\
    kind: Pod
    metadata:
      name: web
      annotations:
        {POLICY_ANNOTATION}: "b2xk"   # old policy
    spec:
      containers: [{{name: a, image: i}}]
    """


def test_existing_policy_is_kept_unless_the_user_says_y(tmp_path):
    path = write(tmp_path, EXISTING)
    before = path.read_bytes()
    questions = []
    assert not inject_policies(str(path), {0: POLICY}, ask=lambda q: questions.append(q) or "n")[0]
    assert path.read_bytes() == before
    assert questions == ["Do you want to overwrite the Base64 Policy currently in workload 'web'? (y/n) "]

    def eof(question: str) -> str:
        raise EOFError

    with pytest.raises(UserInputError, match="standard input is closed"):
        inject_policies(str(path), {0: POLICY}, ask=eof)
    assert path.read_bytes() == before

    assert inject_policies(str(path), {0: POLICY}, ask=lambda q: "Y")[0]
    assert path.read_text() == textwrap.dedent(EXISTING).replace('"b2xk"', POLICY)


def test_unnamed_workload_is_named_by_position(tmp_path):
    path = write(tmp_path, textwrap.dedent(EXISTING).replace("  name: web\n", ""))
    questions = []
    inject_policies(str(path), {0: POLICY}, ask=lambda q: questions.append(q) or "n")
    assert questions == ["Do you want to overwrite the Base64 Policy currently in workload 'Workload 0'? (y/n) "]


def test_crlf_line_endings_are_kept(tmp_path):
    path = tmp_path / "crlf.yaml"
    path.write_bytes(b"kind: Pod\r\nmetadata:\r\n  name: p\r\nspec:\r\n  containers: [{name: a, image: i}]\r\n")
    assert inject_policies(str(path), {0: POLICY}, ask=never_asked)[0]
    assert path.read_bytes() == (b"kind: Pod\r\nmetadata:\r\n  annotations:\r\n    " + POLICY_ANNOTATION.encode()
                                 + b": " + POLICY.encode() + b"\r\n  name: p\r\nspec:\r\n"
                                 b"  containers: [{name: a, image: i}]\r\n")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = write(tmp_path, "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: i}]}\n")
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(UserInputError, match="disk full"):
        inject_policies(str(path), {0: POLICY}, ask=never_asked)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pods.yaml"]


def test_file_written_by_the_reference_is_updated_in_place(tmp_path):
    """The reference re-dumps with yaml.dump_all; re-injecting only swaps the value."""
    old = "b2xk" * 40
    documents = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"template": {"metadata": {"annotations": {POLICY_ANNOTATION: old}},
                                        "spec": {"containers": [{"image": "i", "name": "a"}]}}}}]
    path = tmp_path / "d.yaml"
    path.write_text(yaml.dump_all(documents))
    before = path.read_text()
    assert inject_policies(str(path), {0: POLICY}, ask=lambda q: "y")[0]
    assert path.read_text() == before.replace(old, POLICY)


def test_flow_style_metadata_gets_the_annotation_in_place(tmp_path):
    path = write(tmp_path, "# keep\nkind: Pod\nmetadata: {name: p}   # flow\nspec: {containers: [{name: a, image: i}]}\n")
    assert inject_policies(str(path), {0: POLICY}, ask=never_asked)[0]
    assert path.read_text() == (f"# keep\nkind: Pod\nmetadata: {{annotations: {{{POLICY_ANNOTATION}: {POLICY}}}, "
                                "name: p}   # flow\nspec: {containers: [{name: a, image: i}]}\n")


def test_aliased_metadata_is_annotated_where_its_anchor_is(tmp_path):
    path = write(tmp_path, """\
        x-common: &meta {name: p}   # shared
        kind: Pod
        metadata: *meta
        spec: {containers: [{name: a, image: i}]}
        """)
    assert inject_policies(str(path), {0: POLICY}, ask=never_asked)[0]
    document = yaml.safe_load(path.read_text())
    assert document["metadata"] == {"name": "p", "annotations": {POLICY_ANNOTATION: POLICY}}
    assert document["metadata"] is document["x-common"]


def test_layout_that_cannot_be_edited_in_place_is_rewritten(tmp_path, monkeypatch):
    """If the in-place edit does not parse back to exactly the intended documents, the documents
    are re-dumped (key order kept, comments lost) rather than written wrong."""
    from azext_confcom.inputs import vn2

    path = write(tmp_path, "kind: Pod   # c\nmetadata: {name: p}\nspec: {containers: [{name: a, image: i}]}\n")
    monkeypatch.setattr(vn2, "_edit_text", lambda text, position, policy: text.replace("name: p", "name: q"))
    assert inject_policies(str(path), {0: POLICY}, ask=never_asked)[0]
    assert path.read_text() == (f"kind: Pod\nmetadata:\n  name: p\n  annotations:\n    {POLICY_ANNOTATION}: {POLICY}\n"
                                "spec:\n  containers:\n  - name: a\n    image: i\n")


def test_every_pod_in_one_rewrite_and_a_no_keeps_only_that_pod(tmp_path, monkeypatch):
    """Several pods: one atomic write for all of them (a failure leaves none injected)."""
    import azext_confcom.inputs.vn2 as vn2

    path = write(tmp_path, f"""\
        kind: Pod
        metadata: {{name: first}}   # first pod
        spec: {{containers: [{{name: a, image: "img/a:1"}}]}}
        ---
        kind: Pod
        metadata:
          name: second
          annotations:
            {POLICY_ANNOTATION}: old
        spec: {{containers: [{{name: b, image: "img/b:1"}}]}}
        """)
    saves = []
    monkeypatch.setattr(vn2, "save_text", lambda file, text: saves.append(text) or file.write_text(text))
    questions = []
    written = inject_policies(str(path), {0: "AAAA", 1: "BBBB"}, ask=lambda q: questions.append(q) or "n")
    assert written == {0: True, 1: False}
    assert questions == ["Do you want to overwrite the Base64 Policy currently in workload 'second'? (y/n) "]
    assert len(saves) == 1 and "# first pod" in saves[0]
    assert [d["metadata"]["annotations"][POLICY_ANNOTATION] for d in yaml.safe_load_all(path.read_text())] == \
        ["AAAA", "old"]

    assert inject_policies(str(path), {0: "CCCC", 1: "DDDD"}, ask=lambda q: "y") == {0: True, 1: True}
    assert len(saves) == 2
    assert [d["metadata"]["annotations"][POLICY_ANNOTATION] for d in yaml.safe_load_all(path.read_text())] == \
        ["CCCC", "DDDD"]
