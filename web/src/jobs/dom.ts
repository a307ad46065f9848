/** Tiny DOM helpers shared by the screens. User data only ever goes in through textContent. */

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
};

type Attrs = Record<string, string | number | boolean | undefined | null | ((ev: Event) => void)>;
type Child = Node | string | number | null | undefined | false;

/** `h('a', { href: '?x', onclick: fn }, 'text')`: attributes, `on*` listeners, children as text or nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'number' ? String(c) : c);
  return el;
}

/** A table of rows of text cells, with a caption for screen readers. */
export function table(caption: string, head: string[], rows: Array<Array<Child>>, attrs: Attrs = {}): HTMLElement {
  // Wide tables scroll inside their box, so the page never scrolls sideways on a phone.
  return h(
    'div',
    { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption },
    h(
      'table',
      attrs,
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
    ),
  );
}

/** The page-wide message line; `kind` picks its colour. */
export function flash(message: string | undefined, kind: 'error' | 'info' = 'error'): void {
  const el = $('flash');
  el.textContent = message ?? '';
  el.dataset['kind'] = kind;
  el.hidden = !message;
}
