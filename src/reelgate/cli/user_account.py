"""What an API key may use: ``reelgate credits`` (alone: the key's and its account's credits, ``client.credits
.retrieve``) and ``reelgate model list`` (the models and their prices for the key's group, ``client.models.list``).

``reelgate credits`` is also the operators' group (``credits show --account``, ``credits grant``, reading the
database): ``credits_balance`` is that group's callback, and runs only when no operator subcommand is given.
"""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from reelgate.cli.common import grid
from reelgate.cli.listing import Col
from reelgate.cli.user import ApiKey, AsJson, BaseUrl, print_answer, print_json, print_list, session
from reelgate_client import Credits, Model

# The id and availability stay whole; a narrow terminal leaves out the description first.
MODEL_COLUMNS = (
    Col("model", whole=True),
    Col("available", whole=True),
    Col("price", whole=True),
    Col("description", least=20, drop=1),
)
_UNITS = {"per_call": "per call", "per_second": "per second"}


def _amount(value: float) -> str:
    return f"{value:g}"


def balance_grid(credits: Credits) -> Table:
    table = grid()
    key = "unlimited" if credits.unlimited else f"{_amount(credits.remaining)} remaining"
    table.add_row(Text("this key"), Text(f"{key}, {_amount(credits.used)} used by its tasks"))
    table.add_row(Text("account"), Text(f"{_amount(credits.account_remaining)} remaining, "
                                        f"{_amount(credits.account_used)} used"))  # fmt: skip
    return table


def credits_balance(
    ctx: typer.Context, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None
) -> None:
    """Your API key's and account's credits, remaining and used (client.credits.retrieve).

    The group's own help (admin._credits) says this for ``reelgate credits --help``; this runs only when no operator
    subcommand is given.
    """
    if ctx.invoked_subcommand is not None:
        return  # an operator's subcommand: it reads the database, not the API
    hint = " (operators: reelgate credits show --account NAME reads the database)"
    with session(api_key, base_url, hint=hint) as client:
        credits = client.credits.retrieve()
        print_answer(credits.raw, as_json, balance_grid(credits))


def _price(model: Model) -> str:
    if model.price is None:
        return "-"
    unit = _UNITS.get(model.billing_rule, model.billing_rule)
    return f"{_amount(model.price)} {unit}" if model.billing_rule != "per_second" else f"from {model.price:g} {unit}"


def model_list(as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """The models this server offers, whether each is available, and its price (client.models.list).

    The price is for your key's user group: per call, or per second of video from the model's cheapest option.
    """
    with session(api_key, base_url) as client:
        models = client.models.list()
        rows = [(m.id, "yes" if m.available else "no", _price(m), m.description) for m in models]
        raws = [m.raw for m in models]
        if as_json:
            print_json({"object": "list", "data": raws})
        else:
            print_list(raws, MODEL_COLUMNS, rows, None, as_json)


def model_app() -> typer.Typer:
    model = typer.Typer(no_args_is_help=True, help="The models this server offers and their prices.")
    model.command("list")(model_list)
    return model
