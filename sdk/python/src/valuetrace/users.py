"""The distinct users of one aggregate key in one flush window as HyperLogLog registers (precision
12), shipped in the aggregate's ``user_sketch``, as the Rust client (``users.rs``) does: the same
hash (``user_hash``: the sampling hash of the id, re-mixed with a seed), the same register and rank,
so both clients put the same user in the same register. Only registers leave the process, never
an id or a per-user hash. A sketch is a dict ``{register: rank}`` (at most 4,096 entries)."""

from __future__ import annotations

from .sampling import mix, stable_hash

PRECISION = 12
REGISTERS = 1 << PRECISION
_MASK = (1 << 64) - 1
# "users_v1": separates the user hash from the sampling hash of the same id.
_SEED = 0x7573_6572_735F_7631


def user_hash(user_id: str) -> int:
    """The hash a user id enters the sketch with."""
    return mix(stable_hash(user_id) ^ _SEED)


def register_of(h: int) -> tuple[int, int]:
    """(register, rank): the top 12 bits pick the register; the rank is 1 + the leading zeros of
    the other 52 bits (at most 53)."""
    index = h >> (64 - PRECISION)
    rest = ((h << PRECISION) & _MASK) | (1 << (PRECISION - 1))
    return index, 65 - rest.bit_length()


def insert(sketch: dict, user_id: str) -> None:
    """Counts one user in ``sketch``."""
    index, rank = register_of(user_hash(user_id))
    if sketch.get(index, 0) < rank:
        sketch[index] = rank


def registers(sketch: dict) -> list[list[int]]:
    """The wire's ``user_sketch``: ``[[register, rank], ...]``, registers ascending."""
    return [[index, sketch[index]] for index in sorted(sketch)]
