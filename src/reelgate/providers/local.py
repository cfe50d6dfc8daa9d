"""The local element engine: kling-custom-element served on this machine, with no vendor account."""

from __future__ import annotations

from reelgate.assets import AssetStore
from reelgate.catalog.custom_element import CustomElementParams, MediaPipeline, result_data
from reelgate.config import Settings
from reelgate.domain import new_element_id
from reelgate.errors import MediaError
from reelgate.media.pool import MediaPool
from reelgate.params import INTERNAL
from reelgate.providers import Completed, Failed, Job, JobContext, NewElement, Outcome

NAME = "local"


class LocalProvider:
    """Creates elements on this machine, with no vendor account (so nothing to delete upstream)."""

    name = NAME

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
        return Completed(result_data(params, element_id, stored, self.pipeline.url), NewElement(element_id))

    async def aclose(self) -> None:
        await self.pipeline.aclose()


def build(settings: Settings, assets: AssetStore, pool: MediaPool | None, slots: object = None) -> LocalProvider:
    """Always available: it needs no account."""
    return LocalProvider(MediaPipeline(settings, assets, pool=pool))
