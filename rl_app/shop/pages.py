"""Page text: the visible text nodes of WebShop's pages and its two text renderings.

Instead of rendering HTML and parsing it back on every step, as the original does, each
page is built directly as the list of visible text nodes the original's BeautifulSoup pass
finds, tagged with what the node is. ``render`` then applies ``convert_html_to_text``:

* ``text``: nodes stripped and joined with `` [SEP] ``;
* ``text_rich``: one line per node; buttons and asins as ``[button] X [button_]``,
  option labels indented by two spaces, the selected options as
  ``[clicked button] X [clicked button_]`` with ``You have clicked X.`` lines on top
  (the last selected first), and visited asins as ``[clicked button]``.

Reference captures: shared/webshop-data/reference/PAGES.md.
"""

from __future__ import annotations

import json
from typing import Iterable, Literal, Mapping, NamedTuple, Sequence

from rl_app.shop.types import Product

__all__ = ["Node", "render", "search_page", "results_page", "item_page", "sub_page", "done_page"]

NodeKind = Literal["text", "button", "asin", "option"]


class Node(NamedTuple):
    kind: NodeKind
    text: str
    clicked: bool = False


def _header(instruction: str, on_search_page: bool) -> list[Node]:
    if on_search_page:
        return [Node("text", "WebShop"), Node("text", "Instruction: "), Node("text", instruction)]
    return [Node("text", "Instruction:"), Node("text", instruction)]


def search_page(instruction: str) -> list[Node]:
    return _header(instruction, True) + [Node("button", "Search")]


def results_page(instruction: str, page_num: int, total: int, products: Sequence[Product],
                 visited: Iterable[str]) -> list[Node]:
    visited = set(visited)
    nodes = _header(instruction, False) + [
        Node("button", "Back to Search"), Node("text", f"Page {page_num} (Total results: {total})")]
    if page_num > 1:
        nodes.append(Node("button", "< Prev"))
    nodes.append(Node("button", "Next >"))
    for p in products:
        nodes += [Node("asin", p.asin, p.asin in visited), Node("text", p.title), Node("text", p.price_tag)]
    return nodes


def _option_marked(value: str, options_json: str) -> bool:
    # The original marks a label clicked when '"<label>"' occurs in the page URL, which
    # holds json.dumps(options): values with quotes or non-ASCII characters never match.
    return f'"{value}"' in options_json


def item_page(instruction: str, product: Product, options: Mapping[str, str]) -> list[Node]:
    options_json = json.dumps(dict(options))
    nodes = _header(instruction, False) + [Node("button", "Back to Search"), Node("button", "< Prev")]
    for group, values in product.options:
        nodes.append(Node("text", group))
        nodes += [Node("option", v, bool(options) and _option_marked(v, options_json)) for v in values]
    nodes += [
        Node("text", product.title),
        Node("text", f"Price: {product.price_tag}"),
        Node("text", f"Rating: {product.rating}"),
        Node("button", "Description"), Node("button", "Features"), Node("button", "Reviews"),
        Node("button", "Buy Now"),
    ]
    return nodes


def sub_page(instruction: str, product: Product, which: str) -> list[Node]:
    nodes = _header(instruction, False) + [Node("button", "Back to Search"), Node("button", "< Prev")]
    if which == "description":
        if product.description:
            nodes.append(Node("text", product.description))
    elif which == "features":
        nodes += [Node("text", f" {b}") for b in product.bullet_points if b]
    elif which == "reviews":
        nodes += [Node("text", r) for r in product.reviews if r]
    else:
        raise ValueError(f"unknown sub-page {which!r}")
    return nodes


def done_page(asin: str, options: Mapping[str, str], reward: float) -> list[Node]:
    # The text env renders the done template with most fields unset (None).
    texts = [
        "Thank you for shopping with us!", "Your code: ", "None", " (Paste it in your MTurk interface.)",
        "Purchased", "asin", asin, "options", str(dict(options)), "attrs", "None", "category", "None",
        "query", "None", "product category", "None", "Target", "asin", "options", "attrs", "price upper",
        "instuction text", "category", "product category", "query", "Goal ", "None", "Reward",
        "Your score (min 0.0, max 1.0)", repr(float(reward)), "Reward Details ", "None",
    ]
    return [Node("text", t) for t in texts]


def render(nodes: Sequence[Node], mode: Literal["text", "text_rich"]) -> str:
    if mode == "text":
        return " [SEP] ".join(n.text.strip() for n in nodes)
    if mode != "text_rich":
        raise ValueError(f"unknown observation mode {mode!r}; expected 'text' or 'text_rich'")
    lines = []
    clicked_lines = []
    for n in nodes:
        if n.kind == "button":
            lines.append(f"[button] {n.text} [button_]")
        elif n.kind == "option":
            if n.clicked:
                lines.append(f"  [clicked button] {n.text} [clicked button_]")
                clicked_lines.insert(0, f"You have clicked {n.text}.")
            else:
                lines.append(f"  [button] {n.text} [button_]")
        elif n.kind == "asin":
            tag = "clicked button" if n.clicked else "button"
            lines.append(f"\n[{tag}] {n.text} [{tag}_]")
        else:
            lines.append(n.text)
    return "".join(line + "\n" for line in clicked_lines + lines)
