"""`seoulchain gov ...`: the agencies' proposals, approvals and the consortium's state.

Each transaction command signs with a member agency's key (`--key`, default the operator's)
and takes the same path as `seoulchain tx gov METHOD ...`: the arguments are checked
against the `gov` service's schema, then signed, submitted and waited for. A proposal's
action is given as `key=value` pairs (`seoulchain services gov` lists them):

    seoulchain gov propose grant_role role=vehicle.registrar public_key=<hex>
    seoulchain gov approve 7 --key mapo-gu
"""

from __future__ import annotations

import json as json_module
from typing import Annotated, Any

import typer

from seoulchain.cli.common import (
    HomeOption,
    JsonOption,
    NodeOption,
    open_client,
    print_json,
    reports_errors,
)
from seoulchain.cli.services import build_args, get_method_args, get_service
from seoulchain.cli.txs import (
    EXIT_NOT_FOUND,
    KeyOption,
    PairsArgument,
    TimeoutOption,
    report_commit,
    run_service_query,
    submit_service_tx,
)
from seoulchain.errors import LocalError
from seoulchain.node.home import OPERATOR_KEY_NAME
from seoulchain.services.gov import PROPOSALS_PAGE_MAX, VOTING_PERIOD_BLOCKS_MAX

gov_app = typer.Typer(help="Govern the chain k of n: propose, approve, list proposals.",
                      no_args_is_help=True)

# Blocks a proposal stays open by default: about a day at one block a second.
DEADLINE_BLOCKS_DEFAULT = 86_400

KindArgument = Annotated[str, typer.Argument(
    metavar="KIND", show_default=False,
    help="add_member, remove_member, set_threshold, grant_role, revoke_role, set_validator, "
         "set_param or upgrade.")]
ProposalArgument = Annotated[int, typer.Argument(metavar="ID", show_default=False,
                                                 help="The proposal's number.")]
DeadlineOption = Annotated[int, typer.Option(
    "--deadline-blocks", min=2, max=VOTING_PERIOD_BLOCKS_MAX,
    help="Blocks from the chain's height until the proposal expires (at least 2: the "
         "deadline must come after the height the proposal lands in).")]


def send(home: Any, node: str | None, key: str, method: str, args: dict[str, Any],
         timeout_s: float, as_json: bool) -> None:
    """Sign, submit and wait for one gov transaction; report it (events included)."""
    committed = submit_service_tx(home, node, key, "gov", method, args, timeout_s)
    report_commit(committed, as_json)
    if not as_json:
        for event in committed["result"].get("events", []):
            attributes = "  ".join(f"{name}={value}"
                                   for name, value in event.get("attributes", {}).items())
            typer.echo(f"  {event.get('kind')}  {attributes}")


def query(home: Any, node: str | None, name: str, pairs: list[str]) -> dict[str, Any]:
    with open_client(home, node) as client:
        return run_service_query(client, "gov", name, pairs)


def show_answer(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"as of height {answer['height']}")
        typer.echo(json_module.dumps(answer["result"], indent=2, sort_keys=True))
    if answer["result"] is None:
        raise typer.Exit(EXIT_NOT_FOUND)


@gov_app.command("propose")
@reports_errors
def propose(kind: KindArgument, home: HomeOption, pairs: PairsArgument = None,
            deadline_blocks: DeadlineOption = DEADLINE_BLOCKS_DEFAULT, node: NodeOption = None,
            key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
            json: JsonOption = False) -> None:
    """Propose an action (KIND with key=value fields); it counts as your approval.

    Exit status 0: committed; 1: refused or failed; 4: outcome unknown.
    """
    model = get_method_args(get_service("gov"), "propose")
    args = build_args(model, "gov.propose", pairs or [])
    for reserved in ("kind",):
        if reserved in args:
            raise LocalError(f"give {reserved} as the first word, not as {reserved}=...")
    if "deadline_height" not in args:
        with open_client(home, node) as client:
            args["deadline_height"] = client.get_status()["height"] + deadline_blocks
    send(home, node, key, "propose", {"kind": kind, **args}, timeout, json)


@gov_app.command("approve")
@reports_errors
def approve(proposal: ProposalArgument, home: HomeOption, node: NodeOption = None,
            key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
            json: JsonOption = False) -> None:
    """Approve proposal ID as the agency of --key; the k-th approval applies it."""
    send(home, node, key, "approve", {"proposal": proposal}, timeout, json)


@gov_app.command("withdraw")
@reports_errors
def withdraw(proposal: ProposalArgument, home: HomeOption, node: NodeOption = None,
             key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
             json: JsonOption = False) -> None:
    """Withdraw your agency's approval of open proposal ID."""
    send(home, node, key, "withdraw", {"proposal": proposal}, timeout, json)


@gov_app.command("close")
@reports_errors
def close(proposal: ProposalArgument, home: HomeOption, node: NodeOption = None,
          key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
          json: JsonOption = False) -> None:
    """Record on chain that proposal ID expired (any key may)."""
    send(home, node, key, "close", {"proposal": proposal}, timeout, json)


@gov_app.command("show")
@reports_errors
def show(proposal: ProposalArgument, home: HomeOption, node: NodeOption = None,
         json: JsonOption = False) -> None:
    """Show proposal ID: its action, approvals with heights, status and outcome."""
    show_answer(query(home, node, "proposal", [f"proposal={proposal}"]), json)


@gov_app.command("list")
@reports_errors
def list_proposals(home: HomeOption,
                   status: Annotated[str, typer.Option(
                       help="all, open, passed or expired.")] = "all",
                   limit: Annotated[int, typer.Option(min=1, max=PROPOSALS_PAGE_MAX)] = 20,
                   node: NodeOption = None, json: JsonOption = False) -> None:
    """List proposals, newest first."""
    answer = query(home, node, "proposals", [f"status={status}", f"limit={limit}"])
    if json:
        print_json(answer)
        return
    typer.echo(f"as of height {answer['height']}")
    for record in answer["result"]:
        typer.echo(f"#{record['id']}  {record['status']:<8} {record['action']['kind']:<14} "
                   f"by {record['proposer']}  approvals {len(record['approvals'])}  "
                   f"deadline {record['deadline_height']}")


@gov_app.command("members")
@reports_errors
def members(home: HomeOption, node: NodeOption = None, json: JsonOption = False) -> None:
    """List the member agencies and the threshold k."""
    answer = query(home, node, "members", [])
    if json:
        print_json(answer)
        return
    result = answer["result"]
    typer.echo(f"as of height {answer['height']}: k = {result['threshold']} of "
               f"{len(result['members'])}")
    for member in result["members"]:
        validator = member["validator"] or "-"
        typer.echo(f"{member['name']:<16} keys {', '.join(member['keys'])}  "
                   f"validator {validator}")


@gov_app.command("params")
@reports_errors
def params(home: HomeOption, node: NodeOption = None, json: JsonOption = False) -> None:
    """List the chain parameters set by governance, with the height of each change."""
    show_answer(query(home, node, "parameters", []), json)
