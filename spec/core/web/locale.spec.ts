// Locale: Tornado's CSV translations (plural forms, BOMs, bad rows and file names), the closest
// locale for codes and Accept-Language, and dates, lists and numbers through Intl. The cases of
// Tornado's locale_test.py are ported with Intl's wording where it differs ("6:35 PM", the
// serial comma of "A, B, and C").
import t from "tap";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Locale, browserLocale, getSupportedLocales, loadTranslations, setDefaultLocale } from "../../../core/index.ts";
import { captureLog, logText } from "../../helpers/log.ts";

const FIXTURES = fileURLToPath(new URL("../../fixtures/locale/", import.meta.url));
// Some ICU versions put a narrow no-break space before AM/PM.
const plain = (s: string): string => s.replace(/[\u202f\u00a0]/g, " ");

t.test("CSV translations: loaded, looked up, and bad files and rows skipped with a log line", async (t) => {
  const lines = captureLog(t);
  loadTranslations(FIXTURES);
  t.same(getSupportedLocales(), ["en_US", "es_ES", "fr_FR"]);
  t.equal(Locale.get("fr_FR").translate("school"), "école");
  const es = Locale.get("es_ES");
  t.equal(es.translate("Sign in"), "Entrar");
  t.equal(es.translate("Not translated"), "Not translated");
  t.equal(es.translate("A line, with a comma and \"quotes\""), "Una línea, con una coma y \"comillas\"");
  t.equal(es.translate("Multi\nline"), "Varias\nlíneas");
  t.equal(es.translate("bad row"), "bad row", "a row with an unknown plural indicator is skipped");
  t.match(logText(lines), /Unrecognized locale "de-DE"/);
  t.match(logText(lines), /Unrecognized plural indicator "sometimes" in es_ES\.csv line 7/);
});

t.test("plural forms: singular for a count of 1, the plural row otherwise, placeholders filled", async (t) => {
  loadTranslations(FIXTURES);
  const es = Locale.get("es_ES");
  t.equal(es.translate("%(count)d entry", "%(count)d entries", 1, { count: 1 }), "1 entrada");
  t.equal(es.translate("%(count)d entry", "%(count)d entries", 3, { count: 3 }), "3 entradas");
  t.equal(es.translate("%(count)d entry", "%(count)d entries", 0, { count: 0 }), "0 entradas");
  const en = Locale.get("en_US");
  t.equal(en.translate("%(count)d entry", "%(count)d entries", 1, { count: 1 }), "1 entry");
  t.equal(en.translate("%(count)d entry", "%(count)d entries", 2, { count: 2.7 }), "2 entries");
  t.equal(en.translate("100%% of %(who)s", null, null, { who: "us" }), "100% of us");
  t.throws(() => en.translate("a", "b"), TypeError, "a plural message without a count is a mistake");
});

t.test("CSV files with a UTF-8 BOM or a UTF-16 BOM load (Tornado's test_csv_bom)", async (t) => {
  const text = readFileSync(join(FIXTURES, "fr_FR.csv"), "utf8");
  const encodings: [string, Buffer][] = [
    ["utf-8-sig", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, "utf8")])],
    ["utf-16le", Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")])],
    ["utf-16be", Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, "utf16le").swap16()])],
  ];
  for (const [name, bytes] of encodings) {
    const dir = mkdtempSync(join(tmpdir(), "typhoon-locale-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "fr_FR.csv"), bytes);
    loadTranslations(dir);
    t.equal(Locale.get("fr_FR").translate("school"), "école", name);
  }
});

t.test("Locale.get: exact code, any case or dash, then the language, then the default", async (t) => {
  loadTranslations(FIXTURES);
  t.equal(Locale.get("es_ES").code, "es_ES");
  t.equal(Locale.get("es-es").code, "es_ES");
  t.equal(Locale.get("pt_BR", "fr-FR").code, "fr_FR", "the first supported code wins");
  t.equal(Locale.get("de_DE").code, "en_US");
  t.equal(Locale.get("a_b_c", "", null).code, "en_US");
  t.equal(Locale.get("es_ES"), Locale.get("es-ES"), "instances are cached");
  t.equal(Locale.get("es_ES").tag, "es-ES");
  t.equal(Locale.get("es_ES").name, "español");
  t.notOk(Locale.get("es_ES").rtl);

  const dir = mkdtempSync(join(tmpdir(), "typhoon-locale-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "es.csv"), '"Sign in","Acceder"\n');
  writeFileSync(join(dir, "fa.csv"), '"Sign in","ورود"\n');
  loadTranslations(dir);
  t.equal(Locale.get("es_MX").code, "es", "a language-only file serves every region");
  t.ok(Locale.get("fa").rtl);

  setDefaultLocale("es");
  t.teardown(() => setDefaultLocale("en_US"));
  t.equal(Locale.get("zz").translate("Sign in"), "Acceder", "the default locale is used for unknown codes");
});

t.test("Accept-Language: ordered by q, q=0 and bad q dropped, first supported wins", async (t) => {
  loadTranslations(FIXTURES);
  t.equal(browserLocale("es-ES,es;q=0.9,en;q=0.8").code, "es_ES");
  t.equal(browserLocale("en;q=0.5, fr-FR;q=0.9, es-ES;q=0.7").code, "fr_FR");
  t.equal(browserLocale("fr-FR;q=0, es-ES;q=0.1").code, "es_ES", "q=0 means not acceptable");
  t.equal(browserLocale("fr-FR;q=abc, es-ES;q=0.2").code, "es_ES", "an invalid q counts as 0");
  t.equal(browserLocale("de, fr-FR;q=0.3").code, "fr_FR", "an unsupported language is skipped");
  t.equal(browserLocale(undefined).code, "en_US");
  t.equal(browserLocale("", "es_ES").code, "es_ES");
});

t.test("formatDate: Tornado's EnglishTest.test_format_date with Intl wording", async (t) => {
  const en = Locale.get("en_US");
  const date = Date.UTC(2013, 3, 28, 18, 35);
  t.equal(plain(en.formatDate(date, { fullFormat: true })), "April 28, 2013 at 6:35 PM");
  const now = Date.now();
  t.equal(en.formatDate(now - 2_000, { now }), "2 seconds ago");
  t.equal(en.formatDate(now - 1_000, { now }), "1 second ago");
  t.equal(en.formatDate(now - 2 * 60_000, { now }), "2 minutes ago");
  t.equal(en.formatDate(new Date(now - 2 * 3_600_000), { now }), "2 hours ago");
  t.equal(en.formatDate(now - 86_400_000, { now, shorter: true }), "yesterday");
  const twoDays = new Date(now - 2 * 86_400_000);
  t.equal(en.formatDate(twoDays, { now, shorter: true }), twoDays.toLocaleDateString("en-US", { weekday: "long", timeZone: "UTC" }));
  const days300 = new Date(now - 300 * 86_400_000);
  t.equal(en.formatDate(days300, { now, shorter: true }), days300.toLocaleDateString("en-US", { month: "long", day: "numeric", timeZone: "UTC" }));
  const days500 = new Date(now - 500 * 86_400_000);
  t.equal(en.formatDate(days500, { now, shorter: true }),
    days500.toLocaleDateString("en-US", { month: "long", day: "numeric", year: "numeric", timeZone: "UTC" }));
});

t.test("formatDate: absolute forms, future dates, time zones, Spanish and Russian", async (t) => {
  loadTranslations(FIXTURES);
  const en = Locale.get("en_US");
  const now = Date.UTC(2026, 10, 29, 15, 0); // a Sunday
  t.equal(plain(en.formatDate(now - 3_600_000, { now, relative: false })), "2:00 PM", "today without relative: the time");
  t.equal(plain(en.formatDate(now - 86_400_000, { now })), "yesterday 3:00 PM");
  t.equal(plain(en.formatDate(now - 3 * 86_400_000, { now })), "Thursday 3:00 PM");
  t.equal(plain(en.formatDate(now - 10 * 86_400_000, { now })), "November 19 at 3:00 PM");
  t.equal(en.formatDate(now + 30_000, { now }), "0 seconds ago", "clock skew within a minute reads as now");
  t.equal(plain(en.formatDate(now + 3_600_000, { now })), "November 29, 2026 at 4:00 PM", "the future gets the full format");
  t.equal(plain(en.formatDate(now, { fullFormat: true, timeZone: "America/New_York" })), "November 29, 2026 at 10:00 AM");
  const es = Locale.get("es_ES");
  t.equal(es.formatDate(now - 3 * 60_000, { now }), "hace 3 minutos");
  t.equal(es.formatDate(now - 86_400_000, { now, shorter: true }), "ayer");
  const ru = Locale.get("ru");
  t.notMatch(ru.formatDate(now - 3 * 60_000, { now }), /назад/, "Russian dates are never relative (Tornado)");
});

t.test("formatDay, list and friendlyNumber (Tornado's test_format_day, test_list, test_friendly_number)", async (t) => {
  loadTranslations(FIXTURES);
  const en = Locale.get("en_US");
  const date = Date.UTC(2013, 3, 28, 18, 35);
  t.equal(en.formatDay(date), "Sunday, April 28");
  t.equal(en.formatDay(date, { dow: false }), "April 28");
  t.equal(en.list([]), "");
  t.equal(en.list(["A"]), "A");
  t.equal(en.list(["A", "B"]), "A and B");
  t.equal(en.list(["A", "B", "C"]), "A, B, and C");
  t.equal(Locale.get("es_ES").list(["A", "B", "C"]), "A, B y C");
  t.equal(en.friendlyNumber(1_000_000), "1,000,000");
  t.equal(Locale.get("es_ES").friendlyNumber(1_000_000), "1.000.000");
  t.equal(en.friendlyNumber(12_345_678_901_234_567_890n), "12,345,678,901,234,567,890");
});
