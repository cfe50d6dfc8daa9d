"""The local element engine: kling-custom-element served on this machine, with no vendor account."""

from __future__ import annotations

from typing import Any

from reelgate.catalog.custom_element import CustomElementParams, MediaPipeline, result_data
from reelgate.domain import new_element_id
from reelgate.errors import MediaError
from reelgate.params import INTERNAL
from reelgate.providers import Completed, Failed, Job, JobContext, Outcome


class LocalProvider:
    """Creates elements on this machine, with no vendor account."""

    name = "local"

    def __init__(self, pipeline: MediaPipeline) -> None:
        self.pipeline = pipeline

    async def run(self, job: Job, ctx: JobContext) -> Outcome:
        params = CustomElementParams.model_validate(job.params, context=INTERNAL)
        await ctx.progress(5)
        try:
            stored = await self.pipeline.prepare(params, ctx, job)
        except MediaError as exc:
            return Failed(exc.code, exc.message)
        element_id = new_element_id()
        await ctx.progress(90)
        return Completed(element_id=element_id, result=result_data(params, element_id, stored, self.pipeline.url))

    async def delete_element(self, upstream_id: str, state: dict[str, Any]) -> None:
        return None

    async def aclose(self) -> None:
        await self.pipeline.aclose()
