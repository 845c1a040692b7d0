"""An empty FastAPI app (one async route, no middleware, no auth, no database): the framework's own
ceiling on this machine, measured by `bench.eligibility --ceiling` beside the real gate."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/api/v1/workers/{worker_id}/eligibility")
async def eligibility(worker_id: str) -> dict[str, object]:
    return {"worker_id": worker_id, "eligible": True, "blockers": []}
