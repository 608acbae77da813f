"""The personal data vault: each agency's off-chain store of citizens' records.

`store.Vault` keeps every subject's record versions encrypted under the subject's own key,
wraps those keys under the vault key, logs every read and erases a subject by destroying
its key and ciphertexts; `records` holds the canonical JSON and commitment rules.
"""

from seoulchain.vault.errors import (
    CorruptedRecord,
    InvalidRecord,
    RecordTooLarge,
    SubjectErased,
    SubjectExists,
    UnknownSubject,
    VaultKeyMissing,
    WrongVaultKey,
)
from seoulchain.vault.records import (
    RECORD_BYTES_MAX,
    Commitment,
    compute_commitment,
    encode_record,
    generate_salt,
)
from seoulchain.vault.store import AccessEntry, Vault, VaultRecord

__all__ = [
    "RECORD_BYTES_MAX",
    "AccessEntry",
    "Commitment",
    "CorruptedRecord",
    "InvalidRecord",
    "RecordTooLarge",
    "SubjectErased",
    "SubjectExists",
    "UnknownSubject",
    "Vault",
    "VaultKeyMissing",
    "VaultRecord",
    "WrongVaultKey",
    "compute_commitment",
    "encode_record",
    "generate_salt",
]
