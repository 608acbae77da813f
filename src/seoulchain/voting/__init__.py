"""Belenios 2.0-compatible election cryptography: secret ballots and a verifiable tally.

A layer beside `proofs/` and `credentials/`, importing only `codec/` and `crypto/` (in fact
only gmpy2 and hashlib): every structure reads and writes the JSON of belenios-tool 2.0, so
the tool verifies what this package makes and this package verifies what the tool makes.
- `group.py`: BELENIOS-2048 and RFC-3526-2048, element parsing, the hash into Z_q;
- `election.py`: `Question`, `Election` (kept as its published bytes), `make_election`,
  `parse_election`, the fingerprint;
- `trustees.py`: trustee keys with proofs of knowledge, n-of-n key combination;
- `credential.py`: private credentials, their derived secret, the public credential list;
- `ballot.py`: `create_ballot`, `verify_ballot` (the admission check), `audit_ballot`;
- `threshold.py`: "Pedersen" t-of-n trustees (certificates, commitments, verification
  keys), owner numbering, the election key of any trustees list, Lagrange coefficients;
- `keyceremony.py`: the trustees' steps of threshold key establishment (certificates,
  polynomials, AES-CCM channels, vinputs, voutputs), interoperable with belenios-tool;
- `tally.py`: encrypted tally, partial decryptions and their check, result and its check;
- `archive.py`: `export_archive` (UUID.bel) and `verify_archive`;
- `errors.py`: typed errors; a failed check names itself (`VotingCheckFailed.check`).

Typical flow (docs/voting.md): trustees `generate_trustee_key`; the organiser
`combine_trustee_keys` and `make_election`; voters `create_ballot` with their credential;
validators `verify_ballot` against the `PublicCredentials`; at the end
`compute_encrypted_tally`, each trustee `compute_partial_decryption`, anyone
`compute_result`/`verify_result`, and `export_archive` publishes it for belenios-tool.
"""

from seoulchain.voting.archive import ArchiveReport, export_archive, verify_archive
from seoulchain.voting.ballot import (
    CreatedBallot,
    VerifiedBallot,
    audit_ballot,
    create_ballot,
    verify_ballot,
)
from seoulchain.voting.credential import (
    PublicCredentials,
    compute_public_credential,
    dump_public_credentials,
    generate_credential,
    parse_public_credentials,
)
from seoulchain.voting.election import (
    Election,
    Question,
    generate_uuid,
    make_election,
    parse_election,
)
from seoulchain.voting.group import BELENIOS_2048, RFC_3526_2048, Group, get_group
from seoulchain.voting.tally import (
    EncryptedTally,
    PartialDecryption,
    compute_encrypted_tally,
    compute_items_result,
    compute_partial_decryption,
    compute_result,
    dump_result,
    parse_encrypted_tally,
    parse_partial_decryption,
    parse_result,
    verify_items_result,
    verify_partial_decryption,
    verify_result,
)
from seoulchain.voting.threshold import (
    ThresholdTrustees,
    TrusteeItem,
    compute_election_key,
    dump_trustee_items,
    list_decryption_keys,
    parse_trustee_items,
)
from seoulchain.voting.trustees import (
    TrusteeKeyPair,
    TrusteePublicKey,
    combine_trustee_keys,
    dump_trustees,
    generate_trustee_key,
    parse_private_key,
    parse_trustee_public_key,
    parse_trustees,
)

__all__ = [
    "BELENIOS_2048",
    "RFC_3526_2048",
    "ArchiveReport",
    "CreatedBallot",
    "Election",
    "EncryptedTally",
    "Group",
    "PartialDecryption",
    "PublicCredentials",
    "Question",
    "ThresholdTrustees",
    "TrusteeItem",
    "TrusteeKeyPair",
    "TrusteePublicKey",
    "VerifiedBallot",
    "audit_ballot",
    "combine_trustee_keys",
    "compute_election_key",
    "compute_encrypted_tally",
    "compute_items_result",
    "compute_partial_decryption",
    "compute_public_credential",
    "compute_result",
    "create_ballot",
    "dump_public_credentials",
    "dump_result",
    "dump_trustee_items",
    "dump_trustees",
    "export_archive",
    "generate_credential",
    "generate_trustee_key",
    "generate_uuid",
    "get_group",
    "list_decryption_keys",
    "make_election",
    "parse_election",
    "parse_encrypted_tally",
    "parse_partial_decryption",
    "parse_private_key",
    "parse_public_credentials",
    "parse_result",
    "parse_trustee_items",
    "parse_trustee_public_key",
    "parse_trustees",
    "verify_archive",
    "verify_ballot",
    "verify_items_result",
    "verify_partial_decryption",
    "verify_result",
]
