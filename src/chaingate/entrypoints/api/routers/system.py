from __future__ import annotations

from typing import Any

from fastapi import APIRouter

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
    await container.db.ping()
    return {"status": "ready"}


@router.get("/v1/networks", responses=problem_responses(429))
async def networks(container: ContainerDep) -> dict[str, Any]:
    """Configured networks and the assets each accepts (public information)."""
    data = []
    for network in container.settings.networks:
        family = container.family(network)
        data.append(
            {
                "name": network.name,
                "kind": family.name,
                "chain_id": family.public_chain_id(network),
                "required_confirmations": network.required_confirmations,
                "assets": [
                    {
                        "code": network.native_symbol,
                        "decimals": network.native_decimals,
                        "contract": None,
                    },
                    *(
                        {"code": t.symbol, "decimals": t.decimals, "contract": t.contract}
                        for t in network.tokens
                    ),
                ],
            }
        )
    return {"data": data}
