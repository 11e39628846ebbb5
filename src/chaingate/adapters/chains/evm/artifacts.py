"""Compiled contract artifacts shipped in `chaingate.contracts` (built by
scripts/compile-contracts.mjs; solc is not needed at run time)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

DEMO_TOKEN = "DemoToken"  # noqa: S105 - a contract name
NFT_LIKE_TRANSFER = "NftLikeTransfer"


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    solc_version: str

    def constructor_types(self) -> list[str]:
        """ABI types of the constructor's inputs (simple types only: no tuples)."""
        constructor = next((e for e in self.abi if e.get("type") == "constructor"), None)
        return [] if constructor is None else [str(i["type"]) for i in constructor["inputs"]]


def load_artifact(contract_name: str) -> ContractArtifact:
    """The artifact `<contract_name>.json`. Raises FileNotFoundError for an unknown contract."""
    text = resources.files("chaingate.contracts").joinpath(f"{contract_name}.json").read_text()
    document = json.loads(text)
    return ContractArtifact(
        contract_name=document["contractName"],
        abi=document["abi"],
        bytecode=bytes.fromhex(document["bytecode"].removeprefix("0x")),
        solc_version=document["solcVersion"],
    )
