"""The control-plane methods the stub implements: what ``modal deploy``, ``modal run`` and
``modal app stop`` call for this project's app, answered the way Modal's server answers them
(lookups of missing objects are NOT_FOUND, a Secret without a required key too), and no more.

Every method gets a decoded request and returns a reply (or, for a streaming method, a list of
replies); recording and the UNIMPLEMENTED answer for the rest live in :mod:`._dispatch`.
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grpclib import GRPCError
from grpclib.const import Status
from modal_proto import api_pb2

from tests.modal_stub._proto import Message, empty

__all__ = ["ControlPlane", "StubState"]

IMAGE_BUILDER_VERSION = "2025.06"  # what a current workspace builds images with
APP_URL_BASE = "https://modal.stub.invalid"  # `.invalid`: a name that can never resolve
WEB_URL_SUFFIX = "modal-stub.invalid"

_SUCCESS = api_pb2.GenericResult(status=api_pb2.GenericResult.GENERIC_STATUS_SUCCESS)
_PICKLED_NONE = pickle.dumps(None)  # what a function without a return value returns
# The package source is a few hundred kB; anything near this is a bug in the rehearsal.
MAX_BLOB_BYTES = 64 * 1024 * 1024


@dataclass
class StubState:
    """The stub's objects: what a workspace holds. Guarded by ``lock`` (tests edit it from
    their own thread while the server answers from its loop)."""

    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> key/value pairs
    volumes: dict[str, str] = field(default_factory=dict)  # name -> volume id
    apps: dict[str, str] = field(default_factory=dict)  # app id -> app name
    deployed: dict[str, str] = field(default_factory=dict)  # deployed app name -> app id
    app_states: dict[str, int] = field(default_factory=dict)  # app id -> api_pb2.AppState
    functions: dict[str, api_pb2.Function] = field(default_factory=dict)  # id -> definition
    images: dict[str, api_pb2.Image] = field(default_factory=dict)  # id -> definition
    mounts: dict[str, api_pb2.MountGetOrCreateRequest] = field(default_factory=dict)  # by id
    mount_files: dict[str, bytes] = field(default_factory=dict)  # sha256 hex -> content
    blobs: dict[str, bytes] = field(default_factory=dict)  # blob id -> content
    lock: threading.Lock = field(default_factory=threading.Lock)


class ControlPlane:
    """The implemented methods, over one :class:`StubState`."""

    def __init__(self, state: StubState, blob_url: Callable[[str], str]) -> None:
        self.state = state
        self._blob_url = blob_url  # blob id -> the blob server's URL for it
        self._ids = itertools.count(1)
        self._function_app: dict[str, str] = {}  # function id -> its app id

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-stub{next(self._ids):06d}"

    # ---- the client -------------------------------------------------------------------

    async def ClientHello(self, request: Any) -> api_pb2.ClientHelloResponse:
        return api_pb2.ClientHelloResponse(image_builder_version=IMAGE_BUILDER_VERSION)

    async def EnvironmentGetOrCreate(
        self, request: api_pb2.EnvironmentGetOrCreateRequest
    ) -> api_pb2.EnvironmentGetOrCreateResponse:
        name = request.deployment_name or "main"
        settings = api_pb2.EnvironmentSettings(
            image_builder_version=IMAGE_BUILDER_VERSION, webhook_suffix=WEB_URL_SUFFIX
        )
        return api_pb2.EnvironmentGetOrCreateResponse(
            environment_id=f"en-{name}",
            metadata=api_pb2.EnvironmentMetadata(name=name, settings=settings),
        )

    # ---- apps -----------------------------------------------------------------------------

    async def AppGetByDeploymentName(
        self, request: api_pb2.AppGetByDeploymentNameRequest
    ) -> api_pb2.AppGetByDeploymentNameResponse:
        with self.state.lock:
            app_id = self.state.deployed.get(request.name, "")
        return api_pb2.AppGetByDeploymentNameResponse(app_id=app_id)

    async def AppCreate(self, request: api_pb2.AppCreateRequest) -> api_pb2.AppCreateResponse:
        app_id = self._new_id("ap")
        with self.state.lock:
            self.state.apps[app_id] = request.description
            self.state.app_states[app_id] = request.app_state
        return api_pb2.AppCreateResponse(
            app_id=app_id,
            app_page_url=f"{APP_URL_BASE}/apps/{app_id}",
            app_logs_url=f"{APP_URL_BASE}/logs/{app_id}",
        )

    async def AppGetLayout(
        self, request: api_pb2.AppGetLayoutRequest
    ) -> api_pb2.AppGetLayoutResponse:
        self._app_name(request.app_id)
        with self.state.lock:
            function_ids = {
                f.function_name: fid
                for fid, f in self.state.functions.items()
                if self._function_app.get(fid) == request.app_id
            }
        return api_pb2.AppGetLayoutResponse(app_layout=api_pb2.AppLayout(function_ids=function_ids))

    async def AppHeartbeat(self, request: api_pb2.AppHeartbeatRequest) -> Any:
        self._app_name(request.app_id)
        return empty()

    async def AppPublish(self, request: api_pb2.AppPublishRequest) -> api_pb2.AppPublishResponse:
        self._app_name(request.app_id)
        with self.state.lock:
            self.state.app_states[request.app_id] = request.app_state
            if request.app_state == api_pb2.APP_STATE_DEPLOYED:
                self.state.deployed[request.name] = request.app_id
        return api_pb2.AppPublishResponse(
            url=f"{APP_URL_BASE}/apps/{request.app_id}", deployed_at=1.0
        )

    async def AppClientDisconnect(self, request: api_pb2.AppClientDisconnectRequest) -> Any:
        self._app_name(request.app_id)
        with self.state.lock:  # a deployed app outlives its client; an ephemeral one stops
            if self.state.app_states[request.app_id] != api_pb2.APP_STATE_DEPLOYED:
                self.state.app_states[request.app_id] = api_pb2.APP_STATE_STOPPED
        return empty()

    async def AppGetLifecycle(
        self, request: api_pb2.AppGetLifecycleRequest
    ) -> api_pb2.AppGetLifecycleResponse:
        self._app_name(request.app_id)
        with self.state.lock:
            app_state = self.state.app_states[request.app_id]
        return api_pb2.AppGetLifecycleResponse(
            lifecycle=api_pb2.AppLifecycle(app_state=app_state)  # type: ignore[arg-type]
        )

    async def AppStop(self, request: api_pb2.AppStopRequest) -> Any:
        name = self._app_name(request.app_id)
        with self.state.lock:
            self.state.app_states[request.app_id] = api_pb2.APP_STATE_STOPPED
            if self.state.deployed.get(name) == request.app_id:
                del self.state.deployed[name]
        return empty()

    async def TaskList(self, request: api_pb2.TaskListRequest) -> api_pb2.TaskListResponse:
        self._app_name(request.app_id)
        return api_pb2.TaskListResponse()  # no containers run here

    def AppGetLogs(self, request: api_pb2.AppGetLogsRequest) -> list[api_pb2.TaskLogsBatch]:
        """No container ever runs, so the log stream says at once that the app is done."""
        self._app_name(request.app_id)
        return [api_pb2.TaskLogsBatch(app_done=True, entry_id="1")]

    def _app_name(self, app_id: str) -> str:
        with self.state.lock:
            name = self.state.apps.get(app_id)
        if name is None:
            raise GRPCError(Status.NOT_FOUND, f"App {app_id!r} not found")
        return name

    # ---- Secrets and Volumes ------------------------------------------------------------

    async def SecretGetOrCreate(
        self, request: api_pb2.SecretGetOrCreateRequest
    ) -> api_pb2.SecretGetOrCreateResponse:
        """A lookup by name (the only kind this app makes): NOT_FOUND for a missing Secret or
        one without a required key, as Modal's server answers."""
        if request.object_creation_type != api_pb2.OBJECT_CREATION_TYPE_UNSPECIFIED:
            raise GRPCError(Status.UNIMPLEMENTED, "modal stub: SecretGetOrCreate creating a Secret")
        name = request.deployment_name
        with self.state.lock:
            keys = self.state.secrets.get(name)
        if keys is None:
            raise GRPCError(Status.NOT_FOUND, f"Secret '{name}' not found")
        missing = [key for key in request.required_keys if key not in keys]
        if missing:
            raise GRPCError(
                Status.NOT_FOUND, f"Secret '{name}' is missing key(s): {', '.join(missing)}"
            )
        return api_pb2.SecretGetOrCreateResponse(secret_id=f"st-{name}")

    async def VolumeGetOrCreate(
        self, request: api_pb2.VolumeGetOrCreateRequest
    ) -> api_pb2.VolumeGetOrCreateResponse:
        name = request.deployment_name
        with self.state.lock:
            volume_id = self.state.volumes.get(name)
            if volume_id is None:
                if request.object_creation_type != api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING:
                    raise GRPCError(Status.NOT_FOUND, f"Volume '{name}' not found")
                volume_id = self.state.volumes[name] = f"vo-{name}"
        return api_pb2.VolumeGetOrCreateResponse(
            volume_id=volume_id, version=api_pb2.VOLUME_FS_VERSION_V2
        )

    async def VolumeCommit(
        self, request: api_pb2.VolumeCommitRequest
    ) -> api_pb2.VolumeCommitResponse:
        return api_pb2.VolumeCommitResponse(skip_reload=True)

    # ---- images, mounts, blobs ----------------------------------------------------------

    async def ImageGetOrCreate(
        self, request: api_pb2.ImageGetOrCreateRequest
    ) -> api_pb2.ImageGetOrCreateResponse:
        """Every build completes at once: the reply already carries a success result."""
        image_id = self._new_id("im")
        with self.state.lock:
            self.state.images[image_id] = request.image
        return api_pb2.ImageGetOrCreateResponse(
            image_id=image_id,
            result=_SUCCESS,
            metadata=api_pb2.ImageMetadata(image_builder_version=IMAGE_BUILDER_VERSION),
        )

    async def MountBatchedCheckExistence(
        self, request: api_pb2.MountBatchedCheckExistenceRequest
    ) -> api_pb2.MountBatchedCheckExistenceResponse:
        with self.state.lock:
            missing = [h for h in request.sha256_hex_hashes if h not in self.state.mount_files]
        return api_pb2.MountBatchedCheckExistenceResponse(missing_sha256_hex_hashes=missing)

    async def MountPutFile(
        self, request: api_pb2.MountPutFileRequest
    ) -> api_pb2.MountPutFileResponse:
        if request.WhichOneof("data_oneof") == "data_blob_id":
            content = self._blob(request.data_blob_id)
        elif request.HasField("data"):
            content = request.data
        else:  # a bare hash asks whether the content is already stored
            with self.state.lock:
                return api_pb2.MountPutFileResponse(
                    exists=request.sha256_hex in self.state.mount_files
                )
        with self.state.lock:
            self.state.mount_files[request.sha256_hex] = content
        return api_pb2.MountPutFileResponse(exists=True)

    async def MountGetOrCreate(
        self, request: api_pb2.MountGetOrCreateRequest
    ) -> api_pb2.MountGetOrCreateResponse:
        with self.state.lock:
            absent = [
                f.filename for f in request.files if f.sha256_hex not in self.state.mount_files
            ]
        if absent:
            raise GRPCError(Status.FAILED_PRECONDITION, f"mount files never uploaded: {absent[:3]}")
        mount_id = self._new_id("mo")
        with self.state.lock:
            self.state.mounts[mount_id] = request
        return api_pb2.MountGetOrCreateResponse(mount_id=mount_id)

    async def BlobCreate(self, request: api_pb2.BlobCreateRequest) -> api_pb2.BlobCreateResponse:
        if request.content_length > MAX_BLOB_BYTES:
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"modal stub: blobs over {MAX_BLOB_BYTES} bytes"
            )
        blob_id = self._new_id("bl")
        response = api_pb2.BlobCreateResponse(blob_ids=[blob_id])
        response.upload_urls.items.append(self._blob_url(blob_id))
        return response

    async def BlobGet(self, request: api_pb2.BlobGetRequest) -> api_pb2.BlobGetResponse:
        self._blob(request.blob_id)
        return api_pb2.BlobGetResponse(download_url=self._blob_url(request.blob_id))

    def _blob(self, blob_id: str) -> bytes:
        with self.state.lock:
            content = self.state.blobs.get(blob_id)
        if content is None:
            raise GRPCError(Status.NOT_FOUND, f"Blob {blob_id!r} was never uploaded")
        return content

    # ---- functions and classes ----------------------------------------------------------

    async def FunctionPrecreate(
        self, request: api_pb2.FunctionPrecreateRequest
    ) -> api_pb2.FunctionPrecreateResponse:
        self._app_name(request.app_id)
        function_id = request.existing_function_id or self._new_id("fu")
        metadata = self._handle_metadata(
            request.app_id,
            request.function_name,
            request.function_type,
            request.webhook_config if request.HasField("webhook_config") else None,
            dict(request.method_definitions),
        )
        metadata.supported_input_formats.extend(request.supported_input_formats)
        metadata.supported_output_formats.extend(request.supported_output_formats)
        return api_pb2.FunctionPrecreateResponse(function_id=function_id, handle_metadata=metadata)

    async def FunctionCreate(
        self, request: api_pb2.FunctionCreateRequest
    ) -> api_pb2.FunctionCreateResponse:
        """Store the definition (the record the tests read) and answer as Modal's server does:
        the definition as ``FunctionData`` (its ranked GPU variants, its web URL) and the handle
        the client hydrates from."""
        app_name = self._app_name(request.app_id)
        data = _function_data(request)
        function_id = request.existing_function_id or self._new_id("fu")
        if data.webhook_config.type:
            data.web_url = self._web_url(app_name, data.function_name)
        for method_name, method in data.method_definitions.items():
            if method.webhook_config.type:
                method.web_url = self._web_url(app_name, f"{data.function_name}-{method_name}")
        with self.state.lock:
            self.state.functions[function_id] = data.ranked_functions[0].function
            self._function_app[function_id] = request.app_id
        metadata = self._handle_metadata(
            request.app_id,
            data.function_name,
            data.function_type,
            data.webhook_config if data.webhook_config.type else None,
            dict(data.method_definitions),
        )
        metadata.supported_input_formats.extend(data.supported_input_formats)
        metadata.supported_output_formats.extend(data.supported_output_formats)
        # Both forms, as the server sends them: the CLI prints the URL line from `function`.
        function = api_pb2.Function()
        function.CopyFrom(data.ranked_functions[0].function)
        function.web_url = data.web_url
        for method_name, method in data.method_definitions.items():
            function.method_definitions[method_name].web_url = method.web_url
        return api_pb2.FunctionCreateResponse(
            function_id=function_id,
            function=function,
            function_data=data,
            handle_metadata=metadata,
        )

    async def ClassCreate(self, request: api_pb2.ClassCreateRequest) -> api_pb2.ClassCreateResponse:
        self._app_name(request.app_id)
        return api_pb2.ClassCreateResponse(class_id=request.existing_class_id or self._new_id("cs"))

    async def FunctionMap(self, request: api_pb2.FunctionMapRequest) -> api_pb2.FunctionMapResponse:
        """Accept one call: no container runs it, so its output (below) is ``None`` at once."""
        with self.state.lock:
            known = request.function_id in self.state.functions
        if not known:
            raise GRPCError(Status.NOT_FOUND, f"Function {request.function_id!r} not found")
        response = api_pb2.FunctionMapResponse(function_call_id=self._new_id("fc"))
        for item in request.pipelined_inputs:
            response.pipelined_inputs.add(idx=item.idx, input_id=self._new_id("in"))
        return response

    async def FunctionGetOutputs(
        self, request: api_pb2.FunctionGetOutputsRequest
    ) -> api_pb2.FunctionGetOutputsResponse:
        """The one output of a call the stub accepted: success, returning ``None``."""
        result = api_pb2.GenericResult(
            status=api_pb2.GenericResult.GENERIC_STATUS_SUCCESS, data=_PICKLED_NONE
        )
        item = api_pb2.FunctionGetOutputsItem(
            result=result, idx=request.start_idx, data_format=api_pb2.DATA_FORMAT_PICKLE
        )
        return api_pb2.FunctionGetOutputsResponse(outputs=[item], num_unfinished_inputs=0)

    def _handle_metadata(
        self,
        app_id: str,
        function_name: str,
        function_type: int,
        webhook: api_pb2.WebhookConfig | None,
        methods: dict[str, api_pb2.MethodDefinition],
    ) -> api_pb2.FunctionHandleMetadata:
        app_name = self._app_name(app_id)
        metadata = api_pb2.FunctionHandleMetadata(
            function_name=function_name,
            function_type=function_type,  # type: ignore[arg-type]
            web_url=self._web_url(app_name, function_name) if webhook else "",
            is_method=False,
        )
        for method_name, method in methods.items():
            method_url = ""
            if method.HasField("webhook_config") and method.webhook_config.type:
                method_url = self._web_url(app_name, f"{function_name}-{method_name}")
            metadata.method_handle_metadata[method_name].CopyFrom(
                api_pb2.FunctionHandleMetadata(
                    function_name=f"{function_name}.{method_name}",
                    function_type=method.function_type,
                    web_url=method_url,
                    is_method=True,
                    use_method_name=method_name,
                    supported_input_formats=method.supported_input_formats,
                    supported_output_formats=method.supported_output_formats,
                )
            )
        return metadata

    @staticmethod
    def _web_url(app_name: str, label: str) -> str:
        slug = f"{app_name}-{label}".lower().replace("_", "-").replace(".", "-")
        return f"https://stub--{slug}.{WEB_URL_SUFFIX}"


# The fields a single-GPU definition shares with FunctionData (one ranked copy per GPU).
_SHARED_FIELDS = (
    "module_name",
    "function_name",
    "implementation_name",
    "function_type",
    "warm_pool_size",
    "concurrency_limit",
    "task_idle_timeout_secs",
    "autoscaler_settings",
    "timeout_secs",
    "startup_timeout_secs",
    "webhook_config",
    "is_class",
    "class_parameter_info",
    "is_method",
    "method_definitions",
    "method_definitions_set",
    "supported_input_formats",
    "supported_output_formats",
    "http_config",
    "is_server",
)


def _function_data(request: api_pb2.FunctionCreateRequest) -> api_pb2.FunctionData:
    """The request's definition as the server stores it: FunctionData with ranked copies."""
    if request.HasField("function_data"):
        data = api_pb2.FunctionData()
        data.CopyFrom(request.function_data)
        return data
    if not request.HasField("function"):
        raise GRPCError(Status.INVALID_ARGUMENT, "FunctionCreate without a function definition")
    function: Any = request.function  # fields read by name below
    data = api_pb2.FunctionData()
    for name in _SHARED_FIELDS:
        value = getattr(function, name)
        if isinstance(value, Message):
            if function.HasField(name):
                getattr(data, name).CopyFrom(value)
        elif hasattr(value, "extend"):
            getattr(data, name).extend(value)
        elif hasattr(value, "update"):
            for key, item in value.items():
                getattr(data, name)[key].CopyFrom(item)
        else:
            setattr(data, name, value)
    data.ranked_functions.add(rank=0, function=function)
    return data
