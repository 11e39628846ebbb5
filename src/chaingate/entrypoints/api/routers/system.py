from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from chaingate.entrypoints.api.deps import ContainerDep
from chaingate.entrypoints.api.problems import problem_responses

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Also the benchmarks' hello-world baseline."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(container: ContainerDep) -> dict[str, str]:
    """Readiness: the database answers."""
    async with container.db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"status": "ready"}


@router.get("/v1/networks", responses=problem_responses(429))
async def networks(container: ContainerDep) -> dict[str, Any]:
    """Configured networks and the assets each accepts (public information)."""
    return {
        "data": [
            {
                "name": n.name,
                "kind": n.kind,
                "chain_id": n.chain_id,
                "required_confirmations": n.required_confirmations,
                "assets": [
                    {"code": n.native_symbol, "decimals": n.native_decimals, "contract": None},
                    *(
                        {"code": t.symbol, "decimals": t.decimals, "contract": t.contract}
                        for t in n.tokens
                    ),
                ],
            }
            for n in container.settings.networks
        ]
    }
