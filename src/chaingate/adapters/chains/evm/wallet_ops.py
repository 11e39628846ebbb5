"""Paying from a hot key: deploy, send ETH, send tokens. For the dev demo and tests only.

The gateway itself is watch-only; this module plays the customer's wallet. Transactions are
EIP-1559 (type 2), signed locally with eth-account and broadcast with eth_sendRawTransaction.
Keys are never logged or put in exception messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode, encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.artifacts import ContractArtifact
from chaingate.adapters.chains.evm.parse import NodeReceipt
from chaingate.adapters.chains.evm.rpc import JsonRpcClient

PrivateKey = str | bytes


class TransactionFailed(Exception):
    """A transaction was mined with status 0 where success was required."""


def selector(signature: str) -> bytes:
    """The 4-byte function selector of e.g. "transfer(address,uint256)"."""
    return keccak(signature.encode())[:4]


def address_of(private_key: PrivateKey) -> str:
    """The lower-case address of a private key."""
    return str(Account.from_key(private_key).address).lower()


def encode_call(signature: str, types: Sequence[str], args: Sequence[Any]) -> bytes:
    """Calldata: selector of `signature` followed by the ABI-encoded arguments."""
    return selector(signature) + encode(list(types), list(args))


async def send_transaction(
    rpc: JsonRpcClient,
    private_key: PrivateKey,
    *,
    to: str | None,
    value: int = 0,
    data: bytes = b"",
    gas: int | None = None,
) -> str:
    """Sign and broadcast one EIP-1559 transaction; returns its txid (lower-case 0x-hex).

    `to=None` deploys a contract. Without `gas`, the node's estimate is used (so a call that
    would revert fails here with RpcError instead of being mined).
    """
    sender = address_of(private_key)
    chain_id = parse.quantity(await rpc.call("eth_chainId"), "eth_chainId")
    nonce = parse.quantity(await rpc.call("eth_getTransactionCount", [sender, "pending"]), "nonce")
    latest = await rpc.call("eth_getBlockByNumber", ["latest", False])
    if not isinstance(latest, dict):
        raise parse.BadNodeAnswer("no latest block to read the base fee from")
    base_fee = parse.quantity(latest.get("baseFeePerGas"), "baseFeePerGas")
    tip = parse.quantity(await rpc.call("eth_maxPriorityFeePerGas"), "eth_maxPriorityFeePerGas")
    request: dict[str, Any] = {"from": sender, "value": hex(value), "data": "0x" + data.hex()}
    if to is not None:
        request["to"] = to
    if gas is None:
        gas = parse.quantity(await rpc.call("eth_estimateGas", [request]), "eth_estimateGas")
    transaction: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": value,
        "data": data,
        "gas": gas,
        # Twice the base fee survives several full blocks of base-fee growth.
        "maxFeePerGas": 2 * base_fee + tip,
        "maxPriorityFeePerGas": tip,
    }
    if to is not None:
        # eth-account insists on the EIP-55 form; the project keeps addresses lower-case.
        transaction["to"] = to_checksum_address(to)
    signed = Account.sign_transaction(transaction, private_key)
    txid = "0x" + bytes(signed.hash).hex()
    answered = await rpc.call(
        "eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]
    )
    if parse.hash32(answered, "eth_sendRawTransaction") != txid:
        raise parse.BadNodeAnswer("node reported another txid than the one we signed")
    return txid


async def wait_receipt(
    rpc: JsonRpcClient,
    txid: str,
    timeout: float = 30.0,  # noqa: ASYNC109 - polls a node; a deadline reads clearer here
    poll_interval: float = 0.05,
) -> NodeReceipt:
    """The receipt of `txid` once mined. Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await rpc.call("eth_getTransactionReceipt", [txid])
        if answer is not None:
            return parse.receipt(answer, f"receipt of {txid}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"transaction {txid} not mined within {timeout}s")
        await asyncio.sleep(poll_interval)


async def _succeeded(rpc: JsonRpcClient, txid: str, timeout: float) -> NodeReceipt:  # noqa: ASYNC109
    receipt = await wait_receipt(rpc, txid, timeout)
    if receipt.status != 1:
        raise TransactionFailed(f"transaction {txid} reverted")
    return receipt


async def deploy_contract(
    rpc: JsonRpcClient,
    private_key: PrivateKey,
    artifact: ContractArtifact,
    constructor_args: Sequence[Any] = (),
    *,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> str:
    """Deploy `artifact` and wait for it; returns the contract address (lower-case).

    Raises TransactionFailed when the deployment reverts.
    """
    code = artifact.bytecode + encode(artifact.constructor_types(), list(constructor_args))
    txid = await send_transaction(rpc, private_key, to=None, data=code)
    receipt = await _succeeded(rpc, txid, timeout)
    if receipt.contract_address is None:
        raise parse.BadNodeAnswer(f"deployment {txid} has no contract address")
    return receipt.contract_address


async def send_native(rpc: JsonRpcClient, private_key: PrivateKey, to: str, amount_wei: int) -> str:
    """Send `amount_wei` of the native asset to `to`; returns the txid (not waiting)."""
    return await send_transaction(rpc, private_key, to=to, value=amount_wei, gas=21_000)


async def send_token(
    rpc: JsonRpcClient,
    private_key: PrivateKey,
    contract: str,
    to: str,
    amount: int,
    gas: int | None = None,
) -> str:
    """ERC-20 transfer(to, amount); returns the txid (not waiting). With explicit `gas` a
    transfer that reverts is still mined (status 0), which tests rely on."""
    data = encode_call("transfer(address,uint256)", ["address", "uint256"], [to, amount])
    return await send_transaction(rpc, private_key, to=contract, data=data, gas=gas)


async def mint_token(
    rpc: JsonRpcClient, private_key: PrivateKey, contract: str, to: str, amount: int
) -> str:
    """DemoToken.mint(to, amount) as the token's owner; returns the txid (not waiting)."""
    data = encode_call("mint(address,uint256)", ["address", "uint256"], [to, amount])
    return await send_transaction(rpc, private_key, to=contract, data=data)


async def token_balance(rpc: JsonRpcClient, contract: str, owner: str) -> int:
    """ERC-20 balanceOf(owner) at the latest block."""
    data = encode_call("balanceOf(address)", ["address"], [owner])
    answer = await rpc.call("eth_call", [{"to": contract, "data": "0x" + data.hex()}, "latest"])
    (balance,) = decode(["uint256"], parse.data(answer, "balanceOf"))
    return int(balance)
