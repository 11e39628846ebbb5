"""EIP-1559 (type 2) transactions: the hash a key signs, the signed bytes, their txid, and the
ERC-20 `transfer` call — one implementation for the gateway (building, checking what the signer
answered) and the signer (signing, reading what it is asked to sign)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_hash.auto import keccak

from chaingate.domain.custody import EvmTransaction

TYPE_2 = 0x02
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
_UINT256 = 2**256


class MalformedTransaction(ValueError):
    pass


def _int_bytes(value: int) -> bytes:
    if type(value) is not int or not 0 <= value < _UINT256:
        raise MalformedTransaction(f"not a uint256: {value!r}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""


def _rlp(item: bytes | list[object]) -> bytes:
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _length(len(item), 0x80) + item
    payload = b"".join(_rlp(sub) for sub in item)  # type: ignore[arg-type]
    return _length(len(payload), 0xC0) + payload


def _length(length: int, base: int) -> bytes:
    if length < 56:
        return bytes([base + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([base + 55 + len(encoded)]) + encoded


def address_bytes(address: str) -> bytes:
    """The 20 bytes of a 0x address (any case). Raises MalformedTransaction."""
    if not isinstance(address, str) or len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise MalformedTransaction(f"not a 0x address: {address!r}")
    try:
        return bytes.fromhex(address[2:])
    except ValueError:
        raise MalformedTransaction(f"not a 0x address: {address!r}") from None


def _fields(tx: EvmTransaction) -> list[object]:
    return [
        _int_bytes(tx.chain_id),
        _int_bytes(tx.nonce),
        _int_bytes(tx.max_priority_fee_per_gas),
        _int_bytes(tx.max_fee_per_gas),
        _int_bytes(tx.gas_limit),
        address_bytes(tx.to),
        _int_bytes(tx.value),
        bytes(tx.data),
        [],  # access list: never used by the gateway
    ]


def signing_hash(tx: EvmTransaction) -> bytes:
    """keccak256(0x02 || rlp(fields)): the 32 bytes the sender's key signs."""
    return keccak(bytes([TYPE_2]) + _rlp(_fields(tx)))


def encode_signed(tx: EvmTransaction, y_parity: int, r: int, s: int) -> bytes:
    """The raw transaction `eth_sendRawTransaction` takes."""
    if y_parity not in (0, 1):
        raise MalformedTransaction("y_parity is 0 or 1")
    fields = [*_fields(tx), _int_bytes(y_parity), _int_bytes(r), _int_bytes(s)]
    return bytes([TYPE_2]) + _rlp(fields)


def transaction_hash(raw: bytes) -> str:
    """The txid nodes report for signed bytes `raw`."""
    return "0x" + keccak(raw).hex()


@dataclass(frozen=True, slots=True)
class SignedEvmTransaction:
    transaction: EvmTransaction
    y_parity: int
    r: int
    s: int


def decode_signed(raw: bytes) -> SignedEvmTransaction:
    """Read signed type-2 bytes back (to check a signer's answer against the request).

    Raises MalformedTransaction for anything but a type-2 transaction without access list.
    """
    if not raw or raw[0] != TYPE_2:
        raise MalformedTransaction("not a type-2 transaction")
    items, end = _decode(raw, 1)
    if end != len(raw) or not isinstance(items, list) or len(items) != 12:
        raise MalformedTransaction("not a 12-field type-2 transaction")
    scalars = [_scalar(items[i]) for i in (0, 1, 2, 3, 4, 6, 9, 10, 11)]
    to, data, access = items[5], items[7], items[8]
    if not isinstance(to, bytes) or len(to) != 20 or not isinstance(data, bytes):
        raise MalformedTransaction("bad destination or data")
    if access != []:
        raise MalformedTransaction("access lists are not used by the gateway")
    chain_id, nonce, tip, max_fee, gas, value, y_parity, r, s = scalars
    tx = EvmTransaction(chain_id, nonce, tip, max_fee, gas, "0x" + to.hex(), value, data)
    return SignedEvmTransaction(tx, y_parity, r, s)


def _scalar(item: object) -> int:
    if not isinstance(item, bytes) or len(item) > 32 or item[:1] == b"\x00":
        raise MalformedTransaction("not a canonical integer")
    return int.from_bytes(item, "big")


def _decode(data: bytes, pos: int) -> tuple[bytes | list[object], int]:
    if pos >= len(data):
        raise MalformedTransaction("ends early")
    first = data[pos]
    if first < 0x80:
        return data[pos : pos + 1], pos + 1
    if first < 0xC0:
        length, start = _read_length(data, pos, 0x80)
        end = start + length
        if end > len(data):
            raise MalformedTransaction("ends early")
        return data[start:end], end
    length, start = _read_length(data, pos, 0xC0)
    end = start + length
    if end > len(data):
        raise MalformedTransaction("ends early")
    items: list[object] = []
    cursor = start
    while cursor < end:
        item, cursor = _decode(data, cursor)
        items.append(item)
    if cursor != end:
        raise MalformedTransaction("list length mismatch")
    return items, end


def _read_length(data: bytes, pos: int, base: int) -> tuple[int, int]:
    short = data[pos] - base
    if short < 56:
        return short, pos + 1
    size = short - 55
    if pos + 1 + size > len(data):
        raise MalformedTransaction("ends early")
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def erc20_transfer_call(recipient: str, amount: int) -> bytes:
    """Call data of `transfer(recipient, amount)`."""
    return (
        TRANSFER_SELECTOR
        + address_bytes(recipient).rjust(32, b"\x00")
        + _int_bytes(amount).rjust(32, b"\x00")
    )


def read_erc20_transfer(data: bytes) -> tuple[str, int] | None:
    """(recipient, amount) of `transfer` call data; None for any other call or a malformed
    one (extra bytes, an address word with high bits set)."""
    if len(data) != 68 or data[:4] != TRANSFER_SELECTOR:
        return None
    word = data[4:36]
    if any(word[:12]):
        return None
    return "0x" + word[12:].hex(), int.from_bytes(data[36:68], "big")


def read_address_argument(data: bytes, index: int) -> str | None:
    """The address in ABI word `index` of call data (after the selector); None if the data
    is too short or the word is not an address."""
    start = 4 + 32 * index
    word = data[start : start + 32]
    if index < 0 or len(word) != 32 or any(word[:12]):
        return None
    return "0x" + word[12:].hex()
