"""A 2-of-3 threshold poll from the command line: the key ceremony's six steps as
`seoulchain vote trustee-*`/`ceremony-*` commands exchanging files, `vote create --threshold`,
two of three trustees decrypting, the result published, verified and exported (the
tool's check of such an export is in tests/services/test_vote_threshold.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seoulchain.node.home import Home
from seoulchain.voting import verify_archive
from tests.cli.test_vote_cli import COMMAND, RUNNER, SPEC, Office, office  # noqa: F401

TRUSTEES = ("t1", "t2", "t3")
# A poll of an off-chain list (its SHA-256), so that credentials need no `vc` anchors.
LIST_SPEC = {**SPEC, "eligibility": {"kind": "list", "list_hash": "ab" * 32}}


def offline(*args: str) -> str:
    """Run a ceremony command (they need no node); return its output."""
    result = RUNNER.invoke(COMMAND, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def run_ceremony(root: Path) -> Path:
    """Run the key ceremony's commands for three trustees, threshold 2; return the file
    of threshold parameters."""
    dirs = [root / name for name in TRUSTEES]
    for directory in dirs:
        offline("vote", "trustee-cert", "--out", str(directory))
    assert (dirs[0] / "trustee.key").stat().st_mode & 0o777 == 0o600
    certs = root / "certs.jsons"
    offline("vote", "ceremony-certs", *[arg for directory in dirs
                                          for arg in ("--cert", str(directory / "trustee.cert"))],
              "--out", str(certs))
    for directory in dirs:
        offline("vote", "trustee-polynomial", "--private-key", str(directory / "trustee.key"),
                  "--certs", str(certs), "--threshold", "2",
                  "--out", str(directory / "trustee.poly"))
    polynomials = [arg for directory in dirs
                   for arg in ("--polynomial", str(directory / "trustee.poly"))]
    swapped = RUNNER.invoke(COMMAND, ["vote", "ceremony-vinputs", "--certs", str(certs),
                                      *polynomials[2:4], *polynomials[:2], *polynomials[4:],
                                      "--out", str(root / "vinputs")])
    assert swapped.exit_code == 1 and "polynomial 1 (give them in certificate order)" in \
        swapped.output
    offline("vote", "ceremony-vinputs", "--certs", str(certs), *polynomials,
              "--out", str(root / "vinputs"))
    for number, directory in enumerate(dirs, start=1):
        offline("vote", "trustee-voutput", "--private-key", str(directory / "trustee.key"),
                  "--certs", str(certs), "--vinput", str(root / "vinputs" /
                                                         f"trustee-{number}.vinput"),
                  "--out", str(directory))
    parameters = root / "threshold.json"
    offline("vote", "ceremony-parameters", "--certs", str(certs), "--threshold", "2",
              "--vinputs", str(root / "vinputs"),
              *[arg for directory in dirs
                for arg in ("--voutput", str(directory / "trustee.voutput"))],
              "--out", str(parameters))
    return parameters


@pytest.mark.slow  # about 10 s: six ceremony steps, two ballots, two decryptions
def test_threshold_poll_ceremony_to_verified_result(office: Office) -> None:  # noqa: F811
    root = office.tmp / "threshold"
    parameters = run_ceremony(root)
    for name in TRUSTEES:
        office.ok("keys", "create", name)
    spec = root / "poll.json"
    spec.write_text(json.dumps(LIST_SPEC))
    trustees = [arg for name in TRUSTEES for arg in ("--trustee", name)]
    mixed = office.run("vote", "create", "quorum", "--spec", str(spec), *trustees,
                       "--threshold", "2")
    assert mixed.exit_code == 1 and "needs both --threshold and --parameters" in mixed.output
    office.ok("vote", "create", "quorum", "--spec", str(spec), *trustees, "--threshold", "2",
              "--parameters", str(parameters), "--opens-in", "3", "--closes-in", "40")
    private = root / "credentials.txt"
    office.ok("vote", "credentials", "quorum", "--count", "2", "--out", str(private))
    first, second = private.read_text().split()
    office.ok("vote", "cast", "quorum", "--credential", first, "--choices", "1,2;1")
    office.ok("vote", "cast", "quorum", "--credential", second, "--choices", "3;blank")
    office.ok("vote", "close", "quorum")
    assert "0 of 3 trustees decrypted (2 needed)" in office.ok("vote", "tally", "quorum")
    t1, t3 = root / "t1", root / "t3"
    n_of_n = office.run("vote", "decrypt", "quorum", "--private-key", str(t1 / "trustee.key"),
                        "--key", "t1")
    assert n_of_n.exit_code == 1 and "give --decryption-key" in n_of_n.output
    foreign = office.run("vote", "decrypt", "quorum", "--private-key", str(t1 / "trustee.key"),
                         "--decryption-key", str(t3 / "trustee.dkey"), "--key", "t1")
    assert foreign.exit_code == 1 and "does not decrypt for this trustee" in foreign.output
    wrong_signer = office.run("vote", "decrypt", "quorum", "--private-key",
                              str(t3 / "trustee.key"), "--decryption-key",
                              str(t3 / "trustee.dkey"), "--key", "t1")
    assert wrong_signer.exit_code == 1 and "partial decryption refused" in wrong_signer.output
    chain_keys = [Home(office.node.home.root).load_key(name).public_key.hex()
                  for name in TRUSTEES]
    for directory, name in ((t3, "t3"), (t1, "t1")):
        office.ok("vote", "decrypt", "quorum", "--private-key", str(directory / "trustee.key"),
                  "--decryption-key", str(directory / "trustee.dkey"), "--key", name)
        if name == "t3":
            shown = office.ok("vote", "show", "quorum")
            assert "trustees: threshold 2 of 3; 1 partial decryption(s) posted, 2 needed" \
                in shown
            assert f"1. {chain_keys[0]} pending" in shown
            assert f"3. {chain_keys[2]} decrypted" in shown
            shown_json = json.loads(office.ok("vote", "show", "quorum", "--json"))
            assert shown_json["decrypted_by"] == [chain_keys[2]]
    assert 'result {"result":[[1,1,1],[1,1,0]]}' in office.ok("vote", "tally", "quorum")
    assert f"2. {chain_keys[1]} not needed" in office.ok("vote", "show", "quorum")
    verified = office.ok("vote", "verify", "quorum")
    assert "ok    election: threshold 2 of 3" in verified
    assert "ok    decryptions: 2 of 3 partial decryptions" in verified
    archive = root / "archive"
    office.ok("vote", "export", "quorum", str(archive))
    assert verify_archive(next(archive.glob("*.bel"))).result == ((1, 1, 1), (1, 1, 0))
