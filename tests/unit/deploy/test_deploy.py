"""Deploy settings, the deployment bundle that travels into the container, and the image recipe."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_modal import ConfigError, ServeConfig, build_vllm_command, load_config, vllm_env
from gptoss_modal.deploy import (
    API_KEY_ENV,
    DEPLOYMENT_ENV,
    PINNED_PACKAGES,
    Deployment,
    DeploySettings,
    client_credentials,
    describe,
    hub_repos,
    image_recipe,
    load_deploy_settings,
    load_deployment,
    missing_secret_message,
    open_auth_banner,
)
from gptoss_modal.deploy.image import (
    _FETCH_AND_VERIFY,
    IMAGES,
    TIKTOKEN_DIR,
    TIKTOKEN_VOCABULARIES,
)

REPO = Path(__file__).resolve().parents[3]

FAKE_KEY = "sk-e2e-should-never-be-printed-0123456789"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gptoss.toml"
    path.write_text(text)
    return path


# ---- settings ---------------------------------------------------------------------------


def test_defaults_are_secure() -> None:
    """By default requests need an API key from the 'gptoss-api-key' Modal Secret."""
    settings = DeploySettings()
    assert settings.auth == "api_key"
    assert settings.secret_name == "gptoss-api-key"
    assert settings.min_containers == 0
    assert settings.startup_timeout_s == 30 * 60


@pytest.mark.parametrize("auth", ["", "None", "open", "off", "apikey"])
def test_open_auth_must_be_spelled_out(auth: str) -> None:
    """Only the exact word 'none' turns auth off; anything else is an error, never open."""
    with pytest.raises(ConfigError, match="auth"):
        DeploySettings(auth=auth)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scaledown_window_s", 1),
        ("scaledown_window_s", 3601),
        ("min_containers", -1),
        ("max_containers", 0),
        ("timeout_s", 5),
        ("startup_timeout_s", 10**6),
        ("app_name", "has space"),
        ("secret_name", "x" * 65),
        ("preflight", "maybe"),
        ("min_containers", True),
    ],
)
def test_invalid_settings_name_the_field(field: str, value: object) -> None:
    """A value Modal would reject is refused at construction, naming the field."""
    with pytest.raises(ConfigError) as info:
        DeploySettings(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


def test_min_containers_cannot_exceed_max() -> None:
    """min_containers above max_containers is refused (Modal would refuse the deploy)."""
    with pytest.raises(ConfigError, match="min_containers"):
        DeploySettings(min_containers=3, max_containers=2)


def test_deploy_and_serve_settings_use_distinct_env_names() -> None:
    """No GPTOSS_* variable sets both a serve field and a deploy field."""
    serve = {f.name for f in dataclasses.fields(ServeConfig)}
    deploy = {f.name for f in dataclasses.fields(DeploySettings)}
    assert serve.isdisjoint(deploy)


def test_precedence_is_defaults_toml_env_overrides(tmp_path: Path) -> None:
    """TOML [deploy] beats defaults, GPTOSS_* beats TOML, overrides beat the environment."""
    path = _write(
        tmp_path,
        '[deploy]\napp_name = "from-toml"\nsecret_name = "toml-secret"\nmin_containers = 1\n',
    )
    env = {"GPTOSS_SECRET_NAME": "env-secret", "GPTOSS_MIN_CONTAINERS": "2"}
    settings = load_deploy_settings(path, env=env, overrides={"min_containers": 3})
    assert settings.app_name == "from-toml"
    assert settings.secret_name == "env-secret"
    assert settings.min_containers == 3
    assert settings.scaledown_window_s == DeploySettings().scaledown_window_s


def test_config_path_comes_from_gptoss_config(tmp_path: Path) -> None:
    """Without a path, $GPTOSS_CONFIG names the file, as it does for the serve config."""
    path = _write(tmp_path, '[deploy]\nauth = "proxy"\n')
    assert load_deploy_settings(env={"GPTOSS_CONFIG": str(path)}).auth == "proxy"


def test_env_none_unsets_optional_settings() -> None:
    """GPTOSS_MAX_CONTAINERS=none means no limit; an empty hf secret name means none."""
    env = {"GPTOSS_MAX_CONTAINERS": "none", "GPTOSS_HF_SECRET_NAME": ""}
    settings = load_deploy_settings(env=env)
    assert settings.max_containers is None
    assert settings.hf_secret_name is None


def test_auth_none_from_env_is_not_an_unset_value() -> None:
    """GPTOSS_AUTH=none selects open auth explicitly (it is not read as 'unset')."""
    assert load_deploy_settings(env={"GPTOSS_AUTH": "none"}).auth == "none"


def test_bad_env_value_names_its_variable() -> None:
    """A non-number in GPTOSS_SCALEDOWN_WINDOW_S says which variable was wrong."""
    with pytest.raises(ConfigError) as info:
        load_deploy_settings(env={"GPTOSS_SCALEDOWN_WINDOW_S": "ten minutes"})
    assert "GPTOSS_SCALEDOWN_WINDOW_S" in str(info.value)


def test_out_of_range_env_value_names_its_source() -> None:
    """A value that parses but is out of range is blamed on the variable that set it."""
    with pytest.raises(ConfigError) as info:
        load_deploy_settings(env={"GPTOSS_SCALEDOWN_WINDOW_S": "1"})
    assert info.value.source == "environment GPTOSS_SCALEDOWN_WINDOW_S"


def test_unknown_toml_key_suggests_the_right_one(tmp_path: Path) -> None:
    """A typo in the [deploy] table is an error with a suggestion, not silently ignored."""
    path = _write(tmp_path, '[deploy]\nsecret_nme = "x"\n')
    with pytest.raises(ConfigError, match="did you mean 'secret_name'"):
        load_deploy_settings(path, env={})


def test_serve_and_deploy_tables_share_one_file(tmp_path: Path) -> None:
    """One TOML file holds both tables; each loader reads its own."""
    path = _write(tmp_path, '[serve]\ngpu = "H200:1"\n[deploy]\napp_name = "mine"\n')
    deployment = load_deployment(path, env={})
    assert deployment.serve.gpu == "H200:1"
    assert deployment.settings.app_name == "mine"


# ---- the deployment bundle --------------------------------------------------------------


def test_deployment_json_round_trips() -> None:
    """The JSON carried into the container reads back to an equal deployment."""
    deployment = Deployment(
        ServeConfig(model="120b", gpu="H100:2", profile="latency"),
        DeploySettings(auth="proxy", max_containers=4),
    )
    assert Deployment.from_json(deployment.to_json()) == deployment


def test_deployment_stores_the_resolved_config() -> None:
    """The container gets explicit values, not a profile it would resolve with its own presets."""
    deployment = Deployment(ServeConfig(), DeploySettings())
    assert deployment.serve.profile is None
    assert json.loads(deployment.to_json())["serve"]["max_inputs"] == 32


def test_deployment_argv_and_env_are_the_builders() -> None:
    """The argv and environment a deployment runs are exactly the command builder's."""
    config = ServeConfig(gpu="H200:1", tool_calling=True)
    deployment = Deployment(config, DeploySettings())
    assert deployment.argv == build_vllm_command(config)
    assert deployment.vllm_env == vllm_env(config)
    assert deployment.max_inputs == config.resolved().max_inputs


@pytest.mark.parametrize("text", ["", "[]", '{"format": 99}', '{"format": 1, "serve": 1}'])
def test_broken_deployment_json_is_a_config_error(text: str) -> None:
    """JSON of the wrong shape names the variable that carried it."""
    with pytest.raises(ConfigError, match=DEPLOYMENT_ENV):
        Deployment.from_json(text)


def test_deployment_json_rejects_unknown_settings() -> None:
    """An unknown deploy key in the JSON is an error, not silently dropped."""
    data = json.loads(Deployment(ServeConfig(), DeploySettings()).to_json())
    data["deploy"]["surprise"] = 1
    with pytest.raises(ConfigError, match="surprise"):
        Deployment.from_json(json.dumps(data))


def test_load_deployment_matches_load_config(tmp_path: Path) -> None:
    """load_deployment reads the serve config exactly as load_config does."""
    path = _write(tmp_path, '[serve]\nprofile = "throughput"\n')
    env = {"GPTOSS_GPU": "H200:1"}
    assert load_deployment(path, env=env).serve == load_config(path, env=env).resolved()


# ---- Hub repos and the image --------------------------------------------------------------


def test_hub_repos_are_the_model_at_its_revision_and_the_draft() -> None:
    """The default deployment downloads the pinned 20b and its EAGLE3 draft."""
    model, draft = hub_repos(ServeConfig())
    assert (model.repo_id, model.revision) == (
        "openai/gpt-oss-20b",
        "d666cf3b67006cf8227666739edf25164aaffdeb",
    )
    assert "original/*" in model.ignore_patterns
    assert (draft.role, draft.repo_id) == ("speculator", "RedHatAI/gpt-oss-20b-speculator.eagle3")


def test_hub_repos_skip_the_draft_without_speculation() -> None:
    """Without speculative decoding only the model is downloaded."""
    repos = hub_repos(ServeConfig(profile="throughput"))
    assert [r.role for r in repos] == ["model"]


def test_hub_repos_skip_a_local_draft() -> None:
    """A draft given as a local path is not a Hub repo."""
    repos = hub_repos(ServeConfig(speculative_model="/models/draft"))
    assert [r.role for r in repos] == ["model"]


def test_seed_image_pins_vllm_0_13_and_the_hub_client() -> None:
    """The seed profile's image installs vllm==0.13.0 and huggingface_hub[hf_transfer] exactly."""
    recipe = image_recipe(Deployment(ServeConfig(profile="seed"), DeploySettings()))
    assert recipe.packages == IMAGES["0.13.0"].packages
    assert "vllm==0.13.0" in recipe.packages
    assert any(p.startswith("huggingface_hub[hf_transfer]==") for p in recipe.packages)
    assert recipe.base_image == "nvidia/cuda:12.8.1-devel-ubuntu22.04"
    assert recipe.python_version == "3.12"
    assert recipe.local_package == "gptoss_modal"


def test_default_image_is_vllm_0_33_on_cuda_13() -> None:
    """The default image installs vllm==0.33.0 on a CUDA 13 devel base (its wheels' CUDA)."""
    recipe = image_recipe(Deployment(ServeConfig(), DeploySettings()))
    assert recipe.packages == PINNED_PACKAGES == IMAGES["0.33.0"].packages
    assert "vllm==0.33.0" in recipe.packages
    assert recipe.base_image.startswith("nvidia/cuda:13.")
    assert "-devel-" in recipe.base_image
    assert "HF_HUB_ENABLE_HF_TRANSFER" not in recipe.env  # hub 1.0+ no longer reads it


def _lock_pins(path: Path) -> dict[str, str]:
    """{normalised name: version} of a uv-compiled, hashed lock file."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            pins[name.lower().replace("_", "-")] = rest.split()[0]
    return pins


@pytest.mark.parametrize("version", list(IMAGES))
def test_image_pins_equal_their_lock(version: str) -> None:
    """Each image's pins are what its lock resolved for the image's Python on the image's
    platform, so ``uv pip install`` in that image succeeds (proven offline by the lock)."""
    pins = IMAGES[version]  # type: ignore[index]
    lock = REPO / "requirements" / f"image-vllm-{version}.lock"
    header = lock.read_text(encoding="utf-8").splitlines()[1]
    assert f"--python-version {pins.python_version}" in header
    assert "--python-platform x86_64-manylinux_2_28" in header
    resolved = _lock_pins(lock)
    for package in pins.packages:
        name, _, wanted = package.partition("==")
        assert resolved[name.split("[")[0].lower().replace("_", "-")] == wanted, package
    assert resolved["vllm"] == version


def test_seed_image_env_carries_the_deployment_and_the_gpu_env() -> None:
    """The seed image env has the builder's GPU variables, the vocabulary dir and the JSON."""
    deployment = Deployment(ServeConfig(profile="seed"), DeploySettings())
    env = image_recipe(deployment).env
    assert env["VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8"] == "1"
    assert env["TIKTOKEN_ENCODINGS_BASE"] == TIKTOKEN_DIR
    assert Deployment.from_json(env[DEPLOYMENT_ENV]) == deployment
    assert all(isinstance(v, str) for v in env.values())


def test_default_image_env_has_no_dead_moe_variable() -> None:
    """vLLM 0.33.0 no longer reads the MXFP8 variable: the default image does not set it."""
    env = image_recipe(Deployment(ServeConfig(), DeploySettings())).env
    assert "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8" not in env


def test_hopper_image_has_no_blackwell_kernel_variable() -> None:
    """On H100 the image does not set the Blackwell-only MoE kernel variable."""
    env = image_recipe(Deployment(ServeConfig(gpu="H100:1", profile="seed"), DeploySettings())).env
    assert "VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8" not in env


def test_image_never_holds_an_api_key() -> None:
    """No key variable is baked into the image: the key only comes from the Secret."""
    env = image_recipe(Deployment(ServeConfig(), DeploySettings())).env
    assert API_KEY_ENV not in env
    assert not any(name.endswith(("API_KEY", "_TOKEN", "_SECRET")) for name in env)


def test_image_fetches_each_vocabulary_file_with_its_hash() -> None:
    """Both tiktoken files harmony needs are downloaded at build time and hash-checked."""
    commands = image_recipe(Deployment(ServeConfig(), DeploySettings())).build_commands
    for name, sha256 in TIKTOKEN_VOCABULARIES:
        assert any(name in c and sha256 in c for c in commands)


def _fetch_argv(url: str, sha256: str, dest: Path) -> list[str]:
    command = f"python -c {shlex.quote(_FETCH_AND_VERIFY)} {url} {sha256} {dest}"
    argv = shlex.split(command)
    return [sys.executable, *argv[1:]]


def test_vocabulary_fetch_writes_a_file_with_the_right_hash(tmp_path: Path) -> None:
    """The build step writes the downloaded file when its SHA-256 matches."""
    source = tmp_path / "vocab.tiktoken"
    source.write_bytes(b"aGVsbG8= 0\n")
    dest = tmp_path / "out.tiktoken"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    subprocess.run(_fetch_argv(source.as_uri(), digest, dest), check=True)
    assert dest.read_bytes() == source.read_bytes()


def test_vocabulary_fetch_fails_the_build_on_a_wrong_hash(tmp_path: Path) -> None:
    """A file whose SHA-256 differs fails the build step and is not written."""
    source = tmp_path / "vocab.tiktoken"
    source.write_bytes(b"tampered\n")
    dest = tmp_path / "out.tiktoken"
    result = subprocess.run(
        _fetch_argv(source.as_uri(), "0" * 64, dest), capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "expected" in result.stderr
    assert not dest.exists()


# ---- what is printed, and the messages --------------------------------------------------


def test_describe_shows_the_argv_and_the_auth_mode() -> None:
    """The deploy-time summary shows the vLLM argv, the GPU and where the key comes from."""
    deployment = Deployment(ServeConfig(), DeploySettings(secret_name="team-key"))
    text = describe(deployment)
    assert shlex.join(deployment.argv) in text
    assert "B200:1" in text
    assert "'team-key'" in text
    assert deployment.serve.to_json() in text


def test_open_auth_is_loud() -> None:
    """With auth = 'none' the summary starts with a warning banner naming the GPU."""
    deployment = Deployment(ServeConfig(gpu="H200:1"), DeploySettings(auth="none"))
    text = describe(deployment)
    assert text.startswith(open_auth_banner(deployment))
    assert "ANYONE" in text
    assert "H200:1" in open_auth_banner(deployment)


def test_describe_never_shows_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client or vLLM keys in the deploying machine's environment are not in the summary."""
    monkeypatch.setenv("GPTOSS_API_KEY", FAKE_KEY)
    monkeypatch.setenv(API_KEY_ENV, FAKE_KEY)
    assert FAKE_KEY not in describe(load_deployment(env={}))


def test_missing_secret_message_says_how_to_create_it() -> None:
    """The message for a missing Secret gives the modal command with the right name."""
    text = missing_secret_message(DeploySettings(secret_name="team-key"))
    assert "modal secret create team-key VLLM_API_KEY=" in text
    assert 'auth = "proxy"' in text


def test_client_credentials_for_api_key_auth() -> None:
    """With api_key auth the client sends GPTOSS_API_KEY as its bearer key."""
    key, headers = client_credentials(DeploySettings(), {"GPTOSS_API_KEY": FAKE_KEY})
    assert (key, headers) == (FAKE_KEY, {})


def test_client_credentials_for_proxy_auth() -> None:
    """With proxy auth the client sends Modal-Key and Modal-Secret headers, no bearer key."""
    env = {"GPTOSS_MODAL_KEY": "wk-1", "GPTOSS_MODAL_SECRET": "ws-2"}
    key, headers = client_credentials(DeploySettings(auth="proxy"), env)
    assert key is None
    assert headers == {"Modal-Key": "wk-1", "Modal-Secret": "ws-2"}


def test_missing_client_key_says_what_to_set() -> None:
    """Without GPTOSS_API_KEY the error names the variable and the Secret to take it from."""
    with pytest.raises(ConfigError, match="GPTOSS_API_KEY") as info:
        client_credentials(DeploySettings(secret_name="team-key"), {})
    assert "team-key" in str(info.value)


def test_half_a_proxy_token_is_an_error_without_its_value() -> None:
    """A proxy token id without its secret is refused, and the error does not echo the id."""
    with pytest.raises(ConfigError) as info:
        client_credentials(DeploySettings(auth="proxy"), {"GPTOSS_MODAL_KEY": FAKE_KEY})
    assert FAKE_KEY not in str(info.value)


def test_open_auth_needs_no_credentials() -> None:
    """With auth = 'none' the client sends nothing."""
    assert client_credentials(DeploySettings(auth="none"), {}) == (None, {})


def test_every_deploy_setting_is_documented() -> None:
    """docs/modal-app.md has a row for each deploy setting with its environment variable."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "modal-app.md").read_text()
    missing = [
        f.name
        for f in dataclasses.fields(DeploySettings)
        if f"| `{f.name}` | `GPTOSS_{f.name.upper()}` |" not in text
    ]
    assert missing == []
