// Building page elements: text goes in as text nodes (never parsed as HTML).

/** Return a new `tag` element with `attributes` and `children` (nodes, strings or arrays). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the children of `element` with `children`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** Return a link to a portal route (`#/...`). */
export function link(route, ...children) {
  return h("a", { href: `#${route}` }, ...children);
}

/** Return a shortened hash in a monospace span, its whole value in the title. */
export function shortHash(hex, length = 12) {
  const text = hex && hex.length > length + 3 ? `${hex.slice(0, length)}…` : hex || "";
  return h("span", { class: "hash", title: hex || "" }, text);
}

/** Return a definition list of [label, value] rows. */
export function fields(rows) {
  return h("dl", { class: "fields" },
    rows.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
}

/** Return a card (a section with an optional heading). */
export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

/** Return a badge of a given tone ("ok", "bad", "wait" or none). */
export function badge(text, tone = "") {
  return h("span", { class: `badge ${tone}`.trim() }, text);
}

/** Return pretty-printed JSON in a <pre>. */
export function rawJson(value) {
  return h("pre", { class: "raw" }, JSON.stringify(value, null, 2));
}
