"""The ledger (`ledger` capability): accounts in the currencies linli.toml declares, moved only
by transfers. Amounts are in minor units (fen, hundredths of an hour)."""
from .errors import call, needs

_wit = needs("ledger", "ledger")


def user(pairwise_id: str) -> str:
    """The account owner string of a user (their pairwise id from `identity`)."""
    return f"user:{pairwise_id}"


def pool(name: str) -> str:
    """The account owner string of a pool (a-z, 0-9, `-`), e.g. a community's donations."""
    return f"pool:{name}"


def currencies() -> list:
    return call(_wit.currencies)


def account(currency: str, owner: str):
    """The account of `owner` in `currency`, opened on first use."""
    return call(_wit.open_account, currency, owner)


def get_account(account_id: str):
    return call(_wit.get_account, account_id)


def transfer(payer: str, payee: str, amount: int, idempotency_key: str, memo: str):
    """Move `amount` minor units from `payer` to `payee` (account ids); the same key never moves it twice."""
    return call(_wit.transfer, _wit.TransferRequest(payer, payee, amount, idempotency_key, memo))


def reverse(transfer_id: str, idempotency_key: str, memo: str):
    return call(_wit.reverse, transfer_id, idempotency_key, memo)


def history(account_id: str, cursor: str | None, limit: int):
    return call(_wit.history, account_id, cursor, limit)


def set_limits(account_id: str, floor: int, cap: int | None):
    return call(_wit.set_limits, account_id, floor, cap)
