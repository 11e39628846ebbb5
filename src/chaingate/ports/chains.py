"""What the services need from a chain: its nodes (ChainClient), watch-only derivation
(AddressDeriver), and everything else that differs between chain families (ChainFamily)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from chaingate.config import NetworkConfig
from chaingate.domain.chain import BlockRef, Canonical, ChainTimeRule, MempoolView, ScanResult

WatchLookup = Callable[[Collection[str]], Awaitable[set[str]]]
"""Given candidate recipient addresses, answer the subset the gateway watches."""


class ChainClient(Protocol):
    """One network's nodes, seen through verified value objects.

    Every method raises NodeUnavailable when no node answers usefully; none returns guesses.
    """

    async def verify_chain(self) -> None:
        """Raise if a node serves another chain than configured (wrong chain id, genesis)."""
        ...

    async def tip_height(self) -> int:
        """Height of the best block the nodes agree exists."""
        ...

    async def block_at(self, height: int) -> BlockRef | None:
        """The canonical block at `height`, or None if the node does not have it (yet)."""
        ...

    async def canonical(self, block: BlockRef) -> Canonical:
        """Whether `block` (by height and hash) is still in the node's best chain: NO only on
        proof, UNKNOWN when the node cannot tell (it lags, or never saw the block)."""
        ...

    async def scan(
        self, start: int, end: int, parent: BlockRef | None, is_watched: WatchLookup
    ) -> ScanResult:
        """Blocks start..end (inclusive) and the successful transfers to watched addresses.

        Stops early (fewer blocks) where the node has no block yet, or where the range stops
        linking internally (the next call's parent check then sees the reorg). Raises
        ReorgDetected when block `start` does not link to `parent`.
        """
        ...

    async def wait_for_new_head(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return when a new block is announced (WebSocket newHeads) or after `timeout`."""
        ...

    async def mempool(self, is_watched: WatchLookup) -> MempoolView:
        """Unconfirmed transfers to watched addresses (block=None) and every mempool txid.

        Families without a usable mempool view (EVM) answer an empty view.
        """
        ...

    async def fee_rate(self, target_blocks: int) -> int | None:
        """The node's fee estimate for confirmation within `target_blocks`, None if it has none.

        Units are the family's native fee unit: Bitcoin family sat/vB (rounded up), EVM wei per
        gas (eth_gasPrice, `target_blocks` ignored).
        """
        ...

    async def close(self) -> None: ...


class AddressDeriver(Protocol):
    """Watch-only derivation for one chain family; never sees a private key."""

    def normalize_account_key(self, extended_key: str) -> str:
        """Validate an account-level extended public key; raise InvalidWallet if unusable."""
        ...

    def derive(self, extended_key: str, index: int) -> str:
        """The receive address `.../0/index`, in the network's canonical form."""
        ...

    def key_identity(self, extended_key: str) -> str:
        """What makes two keys the same wallet (domain.wallet_key.key_identity): the public
        key, chain code and script type, whatever the serialization's parent fingerprint,
        depth or child number say. Raises InvalidWallet like `normalize_account_key`."""
        ...


@dataclass(frozen=True, slots=True)
class WalletPolicy:
    """How a family's watch-only wallets behave."""

    # Wallet apps stop looking for payments after a run of unused addresses (BIP-44 gap limit):
    # the gateway reports the gap limit the merchant's wallet app needs and warns when the run
    # of unused addresses passes the configured one (or refuses, with `on_gap: refuse`).
    gap_limit: bool
    # Script types a wallet may derive (Bitcoin family); empty: the family has one address form.
    address_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PaymentPosition:
    """Where a payment sits in its transaction, as merchants read it in payloads."""

    log_index: int | None  # a token transfer's log index in its block (EVM)
    output: str | None  # the output index (Bitcoin family), or "native" (EVM native transfer)


@dataclass(frozen=True, slots=True)
class WalletLink:
    """A link the hosted checkout offers to open the payment request in a wallet."""

    label: str
    url: str


class ChainFamily(Protocol):
    """Everything that differs between chain families (EVM, Bitcoin, ...), in one object.

    One instance per family is registered in the composition root's table, under the name a
    network's `kind` gives. Methods taking a network accept only networks of this family (a
    network of another family is a programming error: TypeError).
    """

    @property
    def name(self) -> str:
        """The family's name: the `kind` its networks are configured with."""
        ...

    @property
    def config_model(self) -> type[NetworkConfig]:
        """The pydantic model a `[networks.<name>]` table of this kind is read into."""
        ...

    @property
    def chain_time(self) -> ChainTimeRule:
        """What proves the chain has passed a moment (expiry)."""
        ...

    @property
    def wallet_policy(self) -> WalletPolicy: ...

    def client(self, network: NetworkConfig) -> ChainClient:
        """A new client of the network's nodes; the caller closes it."""
        ...

    def address_type(
        self, network: NetworkConfig, account_key: str, requested: str | None
    ) -> str | None:
        """The address type a new wallet with `account_key` derives: `requested`, else what
        the key says, else the family's default; None where the family has one address form.
        Raises InvalidWallet for a key or type the network cannot use."""
        ...

    def deriver(self, network: NetworkConfig, address_type: str | None) -> AddressDeriver:
        """The watch-only deriver for a wallet of `address_type` (None: the only form).
        Raises ValueError for an address type the network cannot derive."""
        ...

    def payment_uri(self, network: NetworkConfig, asset: str, address: str, amount: int) -> str:
        """A wallet-readable payment request (EIP-681, BIP-21) for `amount` base units.
        Raises UnknownCurrency, InvalidAmount, or ValueError for a malformed address."""
        ...

    def payment_position(self, position: str) -> PaymentPosition:
        """How a stored payment position (a log index, an output index, "native") reads."""
        ...

    def public_chain_id(self, network: NetworkConfig) -> int | None:
        """The chain id wallets sign for (EIP-155), None where the family has none."""
        ...

    def follows_mempool(self, network: NetworkConfig) -> bool:
        """Whether the tracker polls the network's mempool for unconfirmed payments."""
        ...

    def wallet_links(self, payment_uri: str) -> tuple[WalletLink, ...]:
        """Wallet-specific links for a payment request, beyond the request itself."""
        ...

    def key_origin(self, network: NetworkConfig, account_key: str, origin: str) -> str:
        """`origin` ("fingerprint/path" of the account key, as output descriptors write it)
        checked against the key and normalized. Raises InvalidWallet when it cannot be the
        key's origin, or where the family has no use for one."""
        ...

    def output_descriptor(
        self,
        network: NetworkConfig,
        account_key: str,
        address_type: str | None,
        key_origin: str | None,
    ) -> str | None:
        """The output descriptor of the wallet's receive addresses (`.../0/*`) with its
        checksum, as wallet apps import it; None where the family's wallets have none."""
        ...

    def proves_key_control(
        self,
        network: NetworkConfig,
        account_key: str,
        address_type: str | None,
        message: str,
        signature: str,
    ) -> bool:
        """Whether `signature` signs `message` with the private key of the receive address
        `.../0/0` of `account_key`, in the family's message-signing format (Bitcoin's signed
        message, Ethereum's personal_sign). False for a malformed signature."""
        ...

    # ---- Custody ------------------------------------------------------------------------
    @property
    def treasury_roles(self) -> frozenset[str]:
        """The address roles (`domain.custody.AddressRole` values) a merchant registers on
        this family's networks besides deposit wallets: hot and cold everywhere,
        tokens_collector where deposits of tokens need gas topped up (EVM)."""
        ...

    def normalize_address(self, network: NetworkConfig, address: str) -> str:
        """`address` in the network's canonical form (EVM: lower case, an EIP-55 checksum
        checked when mixed case; Bitcoin family: lower-case bech32 or base58 as given).
        Raises InvalidAddress for anything the network cannot pay to."""
        ...

    # ---- Room for custody (not built yet; each family will add these here) -----------------
    # - build_transaction(network, spend) -> UnsignedTransaction: a payout or sweep, in the
    #   family's own form (EVM: one call with nonce and gas; Bitcoin: chosen UTXOs and change).
    # - fee_model: how `ChainClient.fee_rate` becomes a fee for that transaction (EIP-1559
    #   base + tip; sat/vB times virtual size).
    # - nonce / UTXO handling: who reserves the next nonce, which outputs are locked for a
    #   transaction in flight, and how either is released after a reorg or a failed broadcast.
    # - signer_request(transaction) -> bytes: the exact payload the isolated signer process
    #   signs (an RLP signing hash; a PSBT), so the signer never parses a family it lacks.
