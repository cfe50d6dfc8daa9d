"""A Python client for the Reelgate API: ``Reelgate`` (blocking) and ``AsyncReelgate``, typed results, one error tree.

from reelgate_client import Reelgate

with Reelgate() as client:  # REELGATE_API_KEY, REELGATE_BASE_URL
    task = client.elements.create(name="Bob", description="a knight", frontal="front.jpg", refer=["side.jpg"])
    done = client.tasks.wait(task.id, on_progress=lambda t: print(t.progress))
    print(done.result.element_id)
    video = client.videos.create(model="kling-o3-text-to-video", prompt="<<<element_1>>> waves", elements=[...])
    client.videos.download(client.videos.wait(video.id), "out.mp4")
"""

from reelgate_client._base import DEFAULT_BASE_URL
from reelgate_client._client import AsyncReelgate, Reelgate
from reelgate_client._errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientQuotaError,
    InternalServerError,
    MediaInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReelgateError,
    RequestTooLargeError,
    ServiceUnavailableError,
    TaskFailedError,
    UpstreamError,
    WaitTimeoutError,
)
from reelgate_client._files import File, FilePage, FileQuota
from reelgate_client._media import MediaInput
from reelgate_client._pages import AsyncPage, AsyncPaginator, SyncPage
from reelgate_client._types import (
    CallbackLog,
    Credits,
    DeletedElement,
    Element,
    ElementResult,
    Model,
    Task,
    TaskError,
    TaskStatus,
    Usage,
    VideoTask,
)
from reelgate_client._version import __version__
from reelgate_client._webhook_types import CallbackDelivery, DeliveryStatus, TaskErrorCode, WebhookSecret
from reelgate_client._webhooks import WebhookVerificationError
from reelgate_client._webhooks import secret_id as webhook_secret_id
from reelgate_client._webhooks import verify as verify_webhook

__all__ = [
    "__version__",
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncPage",
    "AsyncPaginator",
    "AsyncReelgate",
    "AuthenticationError",
    "BadRequestError",
    "CallbackDelivery",
    "CallbackLog",
    "ConflictError",
    "DeletedElement",
    "DeliveryStatus",
    "Element",
    "ElementResult",
    "File",
    "FilePage",
    "FileQuota",
    "InsufficientQuotaError",
    "InternalServerError",
    "MediaInput",
    "MediaInputError",
    "Credits",
    "Model",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Reelgate",
    "ReelgateError",
    "RequestTooLargeError",
    "ServiceUnavailableError",
    "SyncPage",
    "Task",
    "TaskError",
    "TaskErrorCode",
    "TaskFailedError",
    "TaskStatus",
    "Usage",
    "UpstreamError",
    "VideoTask",
    "WaitTimeoutError",
    "WebhookSecret",
    "WebhookVerificationError",
    "verify_webhook",
    "webhook_secret_id",
]
