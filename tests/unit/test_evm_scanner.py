"""Scanner consistency checks that a correct node (anvil) can never trigger: a fake node that
contradicts itself must make the scan fail over, never credit. Real scanning is tested on
anvil in tests/integration/test_evm_client.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import httpx
import pytest

from chaingate.adapters.chains.evm.bloom import BLOOM_BYTES, bloom_add
from chaingate.adapters.chains.evm.client import EvmChainClient
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.rpc import JsonRpcClient
from chaingate.adapters.chains.evm.scanner import TRANSFER_TOPIC
from chaingate.config import TokenConfig
from chaingate.domain.chain import BlockRef, NodeUnavailable

TOKEN = "0x" + "cc" * 20
OTHER_TOKEN = "0x" + "dd" * 20
PAYER = "0x" + "aa" * 20
SHOP = "0x" + "bb" * 20
A, B, C = "http://a.test", "http://b.test", "http://c.test"


def h(n: int, salt: int = 0) -> str:
    return "0x" + f"{salt:02x}" * 31 + f"{n:02x}"


def topic_of(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def bloom_for(*items: str) -> str:
    bloom = bytearray(BLOOM_BYTES)
    for item in items:
        bloom_add(bloom, bytes.fromhex(item[2:]))
    return "0x" + bloom.hex()


class FakeChain:
    """Blocks 0..3. Block 2 pays SHOP 1 ETH natively; block 3 pays SHOP 5 token units."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.blocks: dict[int, dict[str, Any]] = {}
        for n in range(4):
            self.blocks[n] = {
                "number": hex(n),
                "hash": h(n),
                "parentHash": h(n - 1) if n else "0x" + "00" * 32,
                "timestamp": hex(1_700_000_000 + 12 * n),
                "logsBloom": "0x" + "00" * BLOOM_BYTES,
                "transactions": [],
            }
        self.blocks[2]["transactions"] = [self.tx(2, h(20, 7), SHOP, 10**18)]
        self.blocks[3]["transactions"] = [self.tx(3, h(30, 7), TOKEN, 0)]
        self.blocks[3]["logsBloom"] = bloom_for(
            TOKEN, TRANSFER_TOPIC, topic_of(PAYER), topic_of(SHOP)
        )
        self.logs: dict[str, list[dict[str, Any]]] = {
            h(3): [self.transfer_log(TOKEN, 5, log_index=0)]
        }
        self.receipts: dict[str, dict[str, Any]] = {
            h(20, 7): self.receipt(h(20, 7), 2),
            h(30, 7): self.receipt(h(30, 7), 3),
        }

    @staticmethod
    def tx(block: int, txid: str, to: str, value: int) -> dict[str, Any]:
        return {
            "hash": txid,
            "blockHash": h(block),
            "blockNumber": hex(block),
            "from": PAYER,
            "to": to,
            "value": hex(value),
            "transactionIndex": "0x0",
        }

    @staticmethod
    def transfer_log(contract: str, amount: int, log_index: int) -> dict[str, Any]:
        return {
            "address": contract,
            "topics": [TRANSFER_TOPIC, topic_of(PAYER), topic_of(SHOP)],
            "data": "0x" + amount.to_bytes(32, "big").hex(),
            "blockHash": h(3),
            "blockNumber": "0x3",
            "transactionHash": h(30, 7),
            "logIndex": hex(log_index),
            "removed": False,
        }

    @staticmethod
    def receipt(txid: str, block: int) -> dict[str, Any]:
        return {
            "transactionHash": txid,
            "blockHash": h(block),
            "blockNumber": hex(block),
            "status": "0x1",
            "contractAddress": None,
        }

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call["method"], call["params"]
        self.calls.append(method)
        if method == "eth_getBlockByNumber":
            result: Any = self.blocks.get(int(params[0], 16))
        elif method == "eth_getBlockByHash":
            result = next((b for b in self.blocks.values() if b["hash"] == params[0]), None)
        elif method == "eth_getLogs":
            result = self.logs.get(params[0]["blockHash"], [])
        elif method == "eth_getTransactionReceipt":
            result = self.receipts.get(params[0])
            if result is not None:  # a receipt holds the logs its transaction emitted
                block_logs = self.logs.get(result["blockHash"], [])
                logs = [log for log in block_logs if log["transactionHash"] == params[0]]
                result = {**result, "logs": logs}
        else:
            result = "0x3"
        return {"jsonrpc": "2.0", "id": call["id"], "result": result}


class Nodes:
    def __init__(self) -> None:
        self.chains = {"a.test": FakeChain(), "b.test": FakeChain(), "c.test": FakeChain()}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        chain = self.chains[request.url.host]
        body = json.loads(request.content)
        if isinstance(body, list):
            return httpx.Response(200, json=[chain.answer(c) for c in body])
        return httpx.Response(200, json=chain.answer(body))


@pytest.fixture
def nodes() -> Nodes:
    return Nodes()


@pytest.fixture
async def client(nodes: Nodes) -> AsyncIterator[EvmChainClient]:
    network = EvmNetworkConfig(
        name="fake",
        chain_id=1,
        rpc_urls=[A, B, C],
        tokens=[TokenConfig(symbol="USDT", contract=TOKEN, decimals=6)],
        # The fake blocks carry made-up hashes and no signed fields: nothing to prove against
        # a header, so every payment needs a second node's word (node c stays honest).
        verify_block_hashes=False,
        payment_proof="two_nodes",
        internal_transfers="off",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(nodes))
    rpc = JsonRpcClient([A, B, C], timeout=1, http_client=http)
    client = EvmChainClient(network, rpc)
    yield client
    await client.close()
    await http.aclose()


def watching(*addresses: str) -> Callable[[Collection[str]], Any]:
    async def is_watched(candidates: Collection[str]) -> set[str]:
        return set(addresses)

    return is_watched


async def parent_of(client: EvmChainClient) -> BlockRef:
    parent = await client.block_at(0)
    assert parent is not None
    return parent


async def test_the_fake_chain_scans_cleanly(client: EvmChainClient, nodes: Nodes) -> None:
    result = await client.scan(1, 3, await parent_of(client), watching(SHOP))
    assert [(t.asset, t.amount, t.position) for t in result.transfers] == [
        ("ETH", 10**18, "native"),
        ("USDT", 5, "0"),
    ]
    # Blocks 1 and 2 have empty blooms: logs were asked for block 3 only.
    assert nodes.chains["a.test"].calls.count("eth_getLogs") == 1


async def test_a_receipt_from_another_block_fails_over(
    client: EvmChainClient, nodes: Nodes
) -> None:
    nodes.chains["a.test"].receipts[h(20, 7)]["blockHash"] = h(9)
    result = await client.scan(1, 3, await parent_of(client), watching(SHOP))
    assert len(result.transfers) == 2
    assert "eth_getTransactionReceipt" in nodes.chains["b.test"].calls


async def test_an_inconsistent_view_on_every_node_raises_node_unavailable(
    client: EvmChainClient, nodes: Nodes
) -> None:
    for chain in nodes.chains.values():
        chain.receipts[h(30, 7)]["blockHash"] = h(9)
    with pytest.raises(NodeUnavailable):
        await client.scan(1, 3, await parent_of(client), watching(SHOP))


async def test_a_missing_receipt_for_a_mined_transaction_raises(
    client: EvmChainClient, nodes: Nodes
) -> None:
    for chain in nodes.chains.values():
        del chain.receipts[h(20, 7)]
    with pytest.raises(NodeUnavailable):
        await client.scan(1, 3, await parent_of(client), watching(SHOP))


@pytest.mark.parametrize(
    "tamper",
    [
        {"blockHash": h(2)},
        {"blockNumber": "0x2"},
        {"transactionHash": h(99)},
    ],
)
async def test_logs_that_belong_elsewhere_raise(
    client: EvmChainClient, nodes: Nodes, tamper: dict[str, str]
) -> None:
    for chain in nodes.chains.values():
        chain.logs[h(3)][0].update(tamper)
    with pytest.raises(NodeUnavailable):
        await client.scan(1, 3, await parent_of(client), watching(SHOP))


async def test_logs_of_other_contracts_or_removed_logs_credit_nothing(
    client: EvmChainClient, nodes: Nodes
) -> None:
    chain = nodes.chains["a.test"]
    chain.logs[h(3)] = [
        FakeChain.transfer_log(OTHER_TOKEN, 5, log_index=0),
        {**FakeChain.transfer_log(TOKEN, 5, log_index=1), "removed": True},
        {**FakeChain.transfer_log(TOKEN, 5, log_index=2), "data": "0x" + "00" * 64},
    ]
    result = await client.scan(3, 3, await client.block_at(2), watching(SHOP))
    assert result.transfers == ()


async def test_a_bad_address_padding_in_a_topic_credits_nothing(
    client: EvmChainClient, nodes: Nodes
) -> None:
    log = nodes.chains["a.test"].logs[h(3)][0]
    log["topics"][2] = "0x" + "ff" * 12 + SHOP[2:]
    result = await client.scan(3, 3, await client.block_at(2), watching(SHOP))
    assert result.transfers == ()


async def test_a_break_inside_the_range_keeps_the_linked_prefix(
    client: EvmChainClient, nodes: Nodes
) -> None:
    for chain in nodes.chains.values():
        chain.blocks[3]["parentHash"] = h(2, salt=5)
    result = await client.scan(1, 3, await parent_of(client), watching(SHOP))
    assert [b.number for b in result.blocks] == [1, 2]
    assert [t.asset for t in result.transfers] == ["ETH"]


async def test_a_missing_block_stops_the_scan_even_if_later_ones_exist(
    client: EvmChainClient, nodes: Nodes
) -> None:
    for chain in nodes.chains.values():
        del chain.blocks[2]
    result = await client.scan(1, 3, await parent_of(client), watching(SHOP))
    assert [b.number for b in result.blocks] == [1]


async def test_a_block_with_the_wrong_number_fails_over(
    client: EvmChainClient, nodes: Nodes
) -> None:
    nodes.chains["a.test"].blocks[2] = nodes.chains["a.test"].blocks[1]
    result = await client.scan(1, 3, await parent_of(client), watching(SHOP))
    assert [b.number for b in result.blocks] == [1, 2, 3]


async def test_the_watch_lookup_cannot_add_addresses_it_was_not_asked_about(
    client: EvmChainClient, nodes: Nodes
) -> None:
    for chain in nodes.chains.values():
        chain.blocks[2]["transactions"][0]["to"] = PAYER
    result = await client.scan(2, 2, await client.block_at(1), watching(SHOP, PAYER.upper()))
    # PAYER (upper-cased by a sloppy lookup) was asked about and is watched: it counts once.
    assert [t.to_address for t in result.transfers] == [PAYER]
    result = await client.scan(2, 2, await client.block_at(1), watching("0x" + "ee" * 20))
    assert result.transfers == ()


async def test_a_four_topic_transfer_with_data_credits_nothing(
    client: EvmChainClient, nodes: Nodes
) -> None:
    # Same topic0 as ERC-20, an extra indexed topic and 32 bytes of data: only the topic count
    # tells it is not an ERC-20 Transfer (anvil's NFT-like contract has no data at all).
    log = nodes.chains["a.test"].logs[h(3)][0]
    log["topics"].append("0x" + "00" * 31 + "07")
    result = await client.scan(3, 3, await client.block_at(2), watching(SHOP))
    assert result.transfers == ()
