/**
 * Translations and locale-aware formatting, Tornado's `tornado.locale`: CSV translation files
 * (`<locale>.csv`, plural forms included), the closest supported locale for a list of codes or
 * an `Accept-Language` header, and dates, lists and numbers formatted by `Intl` (no tables of
 * our own: month names, "3 minutes ago", list conjunctions and digit grouping come from ICU).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { log } from "../log.ts";

/** Tornado's plural indicators (third CSV column); an empty or missing column is `unknown`. */
type PluralForm = "plural" | "singular" | "unknown";

/** One locale's translations: English message → translated message, by plural form. */
type Table = Partial<Record<PluralForm, Map<string, string>>>;

let defaultLocale = "en_US";
let translations = new Map<string, Table>();
let supported: ReadonlySet<string> = new Set([defaultLocale]);
const cache = new Map<string, Locale>();

// Tornado's accepted file names: "es", "es_GT" (not "es-GT", not "ES").
const LOCALE_FILE = /^([a-z]+(?:_[A-Z]+)?)\.csv$/;

/**
 * Loads every `<locale>.csv` in `directory` (Tornado's `load_translations`), replacing the
 * translations loaded before. Each row is `"message","translation"` with an optional third
 * column `plural` or `singular`; files may be UTF-8 (with or without a BOM) or UTF-16 with a BOM.
 * Badly named files and unknown plural indicators are logged and skipped, as Tornado does.
 *
 * @example
 * // locale/es_ES.csv:  "Sign in","Entrar"
 * //                    "%(count)d entries","%(count)d entradas","plural"
 * loadTranslations(new URL("./locale", import.meta.url).pathname);
 * Locale.get("es_ES").translate("Sign in"); // "Entrar"
 */
export function loadTranslations(directory: string): void {
  const loaded = new Map<string, Table>();
  for (const file of readdirSync(directory).sort()) {
    if (!file.endsWith(".csv")) continue;
    const match = LOCALE_FILE.exec(file);
    if (match === null) {
      log.error(`Unrecognized locale ${JSON.stringify(file.slice(0, -4))} (path: ${join(directory, file)})`);
      continue;
    }
    const table: Table = {};
    parseCsv(decodeText(readFileSync(join(directory, file)))).forEach((row, i) => {
      if (row.length < 2) return;
      const [english, translation, indicator] = row.map((cell) => cell.trim());
      const plural = indicator === undefined || indicator === "" ? "unknown" : indicator;
      if (plural !== "plural" && plural !== "singular" && plural !== "unknown") {
        log.error(`Unrecognized plural indicator ${JSON.stringify(plural)} in ${file} line ${i + 1}`);
        return;
      }
      (table[plural] ??= new Map()).set(english!, translation!);
    });
    loaded.set(match[1]!, table);
  }
  translations = loaded;
  supported = new Set([...loaded.keys(), defaultLocale]);
  cache.clear();
  log.debug(`Supported locales: ${[...supported].sort().join(", ")}`);
}

/**
 * Sets the locale of the strings in the code and templates (default `en_US`): it needs no
 * translation file and is what `Locale.get` falls back to.
 */
export function setDefaultLocale(code: string): void {
  defaultLocale = code;
  supported = new Set([...translations.keys(), code]);
  cache.clear();
}

/** The codes of every locale with translations, plus the default locale. */
export function getSupportedLocales(): string[] {
  return [...supported].sort();
}

/** Options of {@link Locale.formatDate}. */
export interface FormatDateOptions {
  /** "3 minutes ago" for dates within the last day, "yesterday" (default true). */
  relative?: boolean;
  /** Drop the time of day from non-relative formats ("April 28" rather than "April 28 at 6:35 PM"). */
  shorter?: boolean;
  /** Always the full date with the year. */
  fullFormat?: boolean;
  /** The IANA time zone the date is shown in (default `UTC`, like Tornado's `gmt_offset=0`). */
  timeZone?: string;
  /** The moment the date is relative to (default now; for tests and batch jobs). */
  now?: Date | number;
}

/**
 * A locale: translations from the CSV files, and `Intl` formatting in that language.
 * Get one with `Locale.get(...)`, or in a handler with `this.locale`.
 */
export class Locale {
  /** Tornado's code, `es_ES` (underscore). */
  readonly code: string;
  /** The BCP 47 tag `Intl` uses, `es-ES`. */
  readonly tag: string;
  /** The language's name in itself ("español"), from `Intl.DisplayNames`. */
  readonly name: string;
  /** Right-to-left script (Arabic, Persian, Hebrew), as Tornado decides it. */
  readonly rtl: boolean;
  readonly #table: Table;
  #formats = new Map<string, Intl.DateTimeFormat>();

  /**
   * The closest supported locale to the codes given, tried in order: an exact match
   * (`es_ES`, `es-es`), then the language alone (`es`); else the default locale (`en_US`).
   * Tornado's `locale.get(*codes)`.
   *
   * @example
   * Locale.get("pt_BR", "es_AR"); // es if only es.csv was loaded, else en_US
   */
  static get(...codes: readonly (string | null | undefined)[]): Locale {
    for (const raw of codes) {
      if (!raw) continue;
      const parts = raw.replace(/-/g, "_").split("_");
      if (parts.length > 2) continue;
      const code = parts.length === 2 ? `${parts[0]!.toLowerCase()}_${parts[1]!.toUpperCase()}` : raw;
      if (supported.has(code)) return Locale.#of(code);
      const language = parts[0]!.toLowerCase();
      if (supported.has(language)) return Locale.#of(language);
    }
    return Locale.#of(defaultLocale);
  }

  static #of(code: string): Locale {
    let locale = cache.get(code);
    if (locale === undefined) {
      locale = new Locale(code, translations.get(code) ?? {});
      cache.set(code, locale);
    }
    return locale;
  }

  private constructor(code: string, table: Table) {
    this.code = code;
    this.tag = toTag(code);
    this.#table = table;
    const language = this.tag.split("-")[0]!;
    this.name = new Intl.DisplayNames([this.tag], { type: "language", fallback: "code" }).of(language) ?? "Unknown";
    this.rtl = /^(fa|ar|he)/.test(code);
  }

  /**
   * The translation of `message`. With `pluralMessage` and `count`, the singular form is used
   * when `count === 1` and the plural form otherwise (Tornado's rule, looked up in the rows
   * marked `singular`/`plural`). `values` fill Python-style placeholders, `%(name)s` and
   * `%(name)d`, after translation (Tornado leaves that to the `%` operator). An untranslated
   * message is returned as it is.
   *
   * @example
   * locale.translate("%(count)d entry", "%(count)d entries", n, { count: n });
   */
  translate(message: string, pluralMessage?: string | null, count?: number | null, values?: Record<string, unknown>): string {
    let key = message;
    let form: PluralForm = "unknown";
    if (pluralMessage !== undefined && pluralMessage !== null) {
      if (typeof count !== "number") throw new TypeError("translate() with a plural message needs a count");
      if (count !== 1) {
        key = pluralMessage;
        form = "plural";
      } else form = "singular";
    }
    const text = this.#table[form]?.get(key) ?? key;
    return values === undefined ? text : interpolate(text, values);
  }

  /**
   * A date for people, Tornado's `format_date` rules with `Intl` wording: within the last day
   * "2 seconds ago" / "3 minutes ago" / "2 hours ago" (relative), then "yesterday 6:35 PM",
   * a weekday within 5 days, month and day within 334 days, else the full date. Dates more than
   * a minute in the future get the full format.
   */
  formatDate(date: Date | number, options: FormatDateOptions = {}): string {
    const { shorter = false, timeZone = "UTC" } = options;
    let relative = options.relative ?? true;
    let full = options.fullFormat ?? false;
    // Tornado: Russian relative dates read badly, so they are absolute.
    if (this.code.startsWith("ru")) relative = false;
    const now = options.now === undefined ? Date.now() : +options.now;
    let when = +date;
    if (when > now) {
      // Clock skew: a timestamp just ahead of now is "now" in relative mode.
      if (relative && when - now < 60_000) when = now;
      else full = true;
    }
    const seconds = Math.floor((now - when) / 1000);
    const days = Math.floor(seconds / 86_400);
    const time = { hour: "numeric", minute: "2-digit" } as const;
    if (!full) {
      if (relative && days === 0) {
        const rtf = new Intl.RelativeTimeFormat(this.tag, { numeric: "always" });
        if (seconds < 50) return rtf.format(-seconds, "second");
        if (seconds < 50 * 60) return rtf.format(-Math.round(seconds / 60), "minute");
        return rtf.format(-Math.round(seconds / 3600), "hour");
      }
      if (days === 0) return this.#format({ ...time, timeZone }, when);
      if (days === 1 && relative && this.#dayKey(when, timeZone) === this.#dayKey(now - 86_400_000, timeZone)) {
        const yesterday = new Intl.RelativeTimeFormat(this.tag, { numeric: "auto" }).format(-1, "day");
        return shorter ? yesterday : `${yesterday} ${this.#format({ ...time, timeZone }, when)}`;
      }
      if (days < 5) return this.#format({ weekday: "long", ...(shorter ? {} : time), timeZone }, when);
      // 334 days (11 months): "April 28" of last year would read as this year's.
      if (days < 334) return this.#format({ month: "long", day: "numeric", ...(shorter ? {} : time), timeZone }, when);
    }
    return this.#format({ year: "numeric", month: "long", day: "numeric", ...(shorter ? {} : time), timeZone }, when);
  }

  /** "Sunday, April 28" (or "April 28" with `dow: false`), Tornado's `format_day`. */
  formatDay(date: Date | number, options: { dow?: boolean; timeZone?: string } = {}): string {
    const { dow = true, timeZone = "UTC" } = options;
    return this.#format({ ...(dow ? { weekday: "long" } : {}), month: "long", day: "numeric", timeZone }, +date);
  }

  /** "A, B, and C" in this locale's words (`Intl.ListFormat`); "" for none, "A" for one. */
  list(items: readonly string[]): string {
    return new Intl.ListFormat(this.tag, { type: "conjunction", style: "long" }).format(items);
  }

  /** A number with this locale's digit grouping: 1,000,000 (en), 1.000.000 (es). */
  friendlyNumber(value: number | bigint): string {
    return new Intl.NumberFormat(this.tag).format(value);
  }

  #format(options: Intl.DateTimeFormatOptions, when: number): string {
    const key = JSON.stringify(options);
    let format = this.#formats.get(key);
    if (format === undefined) {
      format = new Intl.DateTimeFormat(this.tag, options);
      this.#formats.set(key, format);
    }
    return format.format(when);
  }

  #dayKey(when: number, timeZone: string): string {
    return this.#format({ year: "numeric", month: "2-digit", day: "2-digit", timeZone }, when);
  }
}

/**
 * The locale for an `Accept-Language` header (Tornado's `get_browser_locale`): languages
 * ordered by their `q` value (1 when absent, 0 or invalid dropped), then {@link Locale.get}.
 */
export function browserLocale(acceptLanguage: string | undefined, fallback = "en_US"): Locale {
  if (acceptLanguage === undefined || acceptLanguage.trim() === "") return Locale.get(fallback);
  const ranked: { code: string; q: number; i: number }[] = [];
  acceptLanguage.split(",").forEach((item, i) => {
    const [code = "", ...params] = item.trim().split(";");
    let q = 1;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    if (qParam !== undefined) {
      q = Number(qParam.slice(2));
      if (!Number.isFinite(q) || q < 0 || qParam.length === 2) q = 0;
    }
    if (q > 0 && code.trim() !== "") ranked.push({ code: code.trim(), q, i });
  });
  if (ranked.length === 0) return Locale.get(fallback);
  ranked.sort((a, b) => b.q - a.q || a.i - b.i);
  return Locale.get(...ranked.map((r) => r.code));
}

// ---- Internals ------------------------------------------------------------------------------

function toTag(code: string): string {
  const tag = code.replace(/_/g, "-");
  try {
    return Intl.getCanonicalLocales(tag)[0] ?? "en-US";
  } catch {
    return "en-US";
  }
}

// Tornado reads UTF-16 when the file starts with its BOM, else UTF-8 with an optional BOM.
function decodeText(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString("utf16le");
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    swapped.swap16();
    return swapped.toString("utf16le");
  }
  const text = bytes.toString("utf8");
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Rows of a CSV text in Python's default "excel" dialect: comma-separated, fields optionally
 * in double quotes, `""` for a quote inside one, line breaks allowed inside quotes.
 */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const endRow = (): void => {
    row.push(field);
    field = "";
    // Blank lines are empty rows in Python's reader; skip them here.
    if (!(row.length === 1 && row[0] === "")) rows.push(row);
    row = [];
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false;
      } else field += c;
      i++;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      endRow();
      if (c === "\r" && text[i + 1] === "\n") i++;
    } else field += c;
    i++;
  }
  if (field !== "" || row.length > 0) endRow();
  return rows;
}

// Python's %-formatting with a mapping, for the conversions translation files use.
function interpolate(text: string, values: Record<string, unknown>): string {
  return text.replace(/%\((\w+)\)([sdif])|%%/g, (whole, name: string | undefined, conversion: string | undefined) => {
    if (whole === "%%") return "%";
    if (name === undefined || !(name in values)) return whole;
    const value = values[name];
    if (conversion === "d" || conversion === "i") return String(Math.trunc(Number(value)));
    return String(value);
  });
}
