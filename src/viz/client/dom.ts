/**
 * DOM helpers. Every string from the model (names, scopes, attributes) reaches the page through `textContent`
 * or `setAttribute` only — never innerHTML — so a name like `<script>` is shown, not run.
 */
export type Child = Node | string | number | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { [k: string]: string | number | boolean | undefined } = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  setProps(e, props);
  append(e, children);
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, props: { [k: string]: string | number | boolean | undefined } = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag) as SVGElementTagNameMap[K];
  setProps(e, props);
  append(e, children);
  return e;
}

function setProps(e: Element, props: { [k: string]: string | number | boolean | undefined }): void {
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(e: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(e: Element): void {
  while (e.firstChild) e.removeChild(e.firstChild);
}
