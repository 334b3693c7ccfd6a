"""ARM template + parameters file + a real image tar -> policy, with the real image library and
our dmverity-vhd subprocess (no recorded seams)."""

from __future__ import annotations

import json

from azext_confcom.images import ImageReference, TarSource, open_image
from azext_confcom.policy.arm import load_arm_template
from azext_confcom.policy.existing import read_existing_policy
from azext_confcom.policy.generate import PolicyOptions, generate_policies
from azext_confcom.policy.hashes import DmverityHasher, ImageLocation
from azext_confcom.policy.render import OutputType, render


def test_golden_image_policy(tmp_path, write_json, golden_images, golden_expected):
    expected = golden_expected["multi_layer.tar"]
    ref = expected["ref"]
    template = write_json("template.json", {
        "parameters": {"image": {"type": "string"}, "mode": {"type": "string", "defaultValue": "prod"}},
        "resources": [{"type": "Microsoft.ContainerInstance/containerGroups", "name": "golden",
                       "properties": {"containers": [{"name": "app", "properties": {
                           "image": "[parameters('image')]",
                           "environmentVariables": [{"name": "APP_MODE", "value": "[parameters('mode')]"}],
                           "readinessProbe": {"exec": {"command": ["/usr/bin/app", "--check"]}},
                           "securityContext": {"runAsUser": 1000}}}]}}]})
    parameters = write_json("parameters.json", {"parameters": {"image": {"value": ref}}})
    mapping = write_json("tars.json", {ref: str(golden_images / "multi_layer.tar")})

    tar = TarSource.from_option(mapping)
    opened = {}

    def image_info(name):
        opened[name] = open_image(name, tar=tar)
        return opened[name].config

    def locate(name):
        assert opened[name].source == "tar"
        return ImageLocation("tar", str(tar.path_for(ImageReference.parse(name))))

    groups = load_arm_template(template, parameters).groups
    policy = generate_policies(groups, PolicyOptions(), image_info, DmverityHasher(locate))[0]
    app = policy.containers[0]

    assert app["id"] == ref and app["name"] == "app"
    assert app["layers"] == expected["layers"]
    assert app["command"] == ["/usr/bin/app", "--serve", "--port=8080"]
    assert [r["pattern"] for r in app["env_rules"][:4]] == [
        "APP_MODE=prod", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "EMPTY=", "TERM=xterm"]
    assert app["working_dir"] == "/app"
    assert app["signals"] == [3]  # StopSignal SIGQUIT
    assert app["user"]["user_idname"] == {"pattern": "1000", "strategy": "id"}  # runAsUser beats User
    assert app["exec_processes"] == [{"command": ["/usr/bin/app", "--check"], "signals": []}]

    text = render(policy, OutputType.RAW)
    assert read_existing_policy(render(policy)).containers == json.loads(
        text.split("containers := ", 1)[1].split("\n", 1)[0])
