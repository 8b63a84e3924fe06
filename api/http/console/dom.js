// A small element builder: el("p", {i18n: "key", vars: {...}, class: "x"}, child, ...).
import { label, translate } from "./i18n.js";

export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "i18n") continue;
    if (name === "vars") continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name === "i18nAttr") node.dataset.i18nAttr = value;
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  if (options.i18n) label(node, options.i18n, options.vars);
  if (options.i18nAttr) {
    if (options.vars) node.dataset.i18nVars = JSON.stringify(options.vars);
    translate(node);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function show(node, visible = true) {
  node.hidden = !visible;
}
