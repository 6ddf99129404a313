/**
 * A strict little XML parser for specs that check documents we generate (the blog's Atom feed):
 * well-formedness (one root, matched and properly nested tags, quoted unique attributes, only
 * the five predefined entities or numeric references, no stray `<` or `&`), namespaces
 * resolved to URIs. No DTDs. It throws on the first error, with its offset.
 */

/** An element: its namespace URI, local name, attributes (by qualified name), children and text. */
export interface XmlElement {
  readonly ns: string;
  readonly name: string;
  readonly attributes: Record<string, string>;
  readonly children: XmlElement[];
  /** The concatenated character data directly inside this element. */
  text: string;
}

const NAME = /^[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?/;
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(text: string, at: number): string {
  if (text.includes("<")) throw new Error(`"<" in character data at ${at}`);
  return text.replace(/&([^;]*);|&/g, (_whole, ref: string | undefined) => {
    if (ref === undefined) throw new Error(`bare "&" at ${at}`);
    if (ref in ENTITIES) return ENTITIES[ref]!;
    const m = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(ref);
    if (m === null) throw new Error(`unknown entity &${ref}; at ${at}`);
    return String.fromCodePoint(m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]));
  });
}

/** Parses a whole document and returns its root element. */
export function parseXml(source: string): XmlElement {
  let i = 0;
  const stack: { el: XmlElement; qname: string; scope: Record<string, string> }[] = [];
  let root: XmlElement | null = null;
  const skipMisc = (): void => {
    for (;;) {
      const ws = /^\s*/.exec(source.slice(i))![0].length;
      i += ws;
      if (source.startsWith("<?", i)) {
        const end = source.indexOf("?>", i);
        if (end < 0) throw new Error(`unterminated processing instruction at ${i}`);
        i = end + 2;
      } else if (source.startsWith("<!--", i)) {
        const end = source.indexOf("-->", i);
        if (end < 0) throw new Error(`unterminated comment at ${i}`);
        i = end + 3;
      } else return;
    }
  };
  skipMisc();
  if (source[i] !== "<") throw new Error(`no root element at ${i}`);
  while (i < source.length) {
    if (stack.length === 0 && root !== null) {
      skipMisc();
      if (i < source.length) throw new Error(`content after the root element at ${i}`);
      break;
    }
    const lt = source.indexOf("<", i);
    if (lt < 0) throw new Error(`unclosed <${stack.at(-1)?.qname ?? "?"}>`);
    if (lt > i) {
      const text = source.slice(i, lt);
      if (stack.length === 0) throw new Error(`text outside the root element at ${i}`);
      stack.at(-1)!.el.text += decode(text, i);
      i = lt;
    }
    if (source.startsWith("<!--", i)) {
      const end = source.indexOf("-->", i);
      if (end < 0) throw new Error(`unterminated comment at ${i}`);
      i = end + 3;
    } else if (source.startsWith("<![CDATA[", i)) {
      const end = source.indexOf("]]>", i);
      if (end < 0 || stack.length === 0) throw new Error(`bad CDATA section at ${i}`);
      stack.at(-1)!.el.text += source.slice(i + 9, end);
      i = end + 3;
    } else if (source.startsWith("<?", i)) {
      const end = source.indexOf("?>", i);
      if (end < 0) throw new Error(`unterminated processing instruction at ${i}`);
      i = end + 2;
    } else if (source.startsWith("</", i)) {
      const m = /^<\/([^\s>]+)\s*>/.exec(source.slice(i));
      const open = stack.pop();
      if (m === null || open === undefined || m[1] !== open.qname) throw new Error(`mismatched end tag at ${i} (open: ${open?.qname ?? "none"})`);
      i += m[0].length;
    } else {
      i++;
      const name = NAME.exec(source.slice(i));
      if (name === null) throw new Error(`bad tag name at ${i}`);
      const qname = name[0];
      i += qname.length;
      const raw: Record<string, string> = {};
      for (;;) {
        const ws = /^\s*/.exec(source.slice(i))![0].length;
        i += ws;
        if (source.startsWith("/>", i) || source[i] === ">") break;
        if (ws === 0) throw new Error(`missing white space before an attribute at ${i}`);
        const attr = /^([A-Za-z_][\w.:-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/.exec(source.slice(i));
        if (attr === null) throw new Error(`bad attribute at ${i}`);
        if (attr[1]! in raw) throw new Error(`duplicate attribute ${attr[1]} at ${i}`);
        raw[attr[1]!] = decode(attr[3] ?? attr[4] ?? "", i);
        i += attr[0].length;
      }
      const parentScope = stack.at(-1)?.scope ?? { xml: "http://www.w3.org/XML/1998/namespace" };
      const scope = { ...parentScope };
      for (const [k, v] of Object.entries(raw)) {
        if (k === "xmlns") scope[""] = v;
        else if (k.startsWith("xmlns:")) scope[k.slice(6)] = v;
      }
      const [prefix, local] = qname.includes(":") ? qname.split(":") as [string, string] : ["", qname];
      const ns = scope[prefix];
      if (prefix !== "" && ns === undefined) throw new Error(`undeclared prefix ${prefix} at ${i}`);
      const el: XmlElement = { ns: ns ?? "", name: local, attributes: raw, children: [], text: "" };
      if (stack.length > 0) stack.at(-1)!.el.children.push(el);
      else if (root === null) root = el;
      else throw new Error(`second root element at ${i}`);
      if (source.startsWith("/>", i)) i += 2;
      else {
        i += 1;
        stack.push({ el, qname, scope });
      }
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.at(-1)!.qname}>`);
  if (root === null) throw new Error("no root element");
  return root;
}

/** The children of `el` named `name` in namespace `ns`. */
export function childrenNamed(el: XmlElement, ns: string, name: string): XmlElement[] {
  return el.children.filter((c) => c.ns === ns && c.name === name);
}
