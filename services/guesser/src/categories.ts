import { readFileSync } from 'node:fs';
import { ConfigError } from '@workemon/service-kit';

/** One request category the guesser may assign (CATEGORIES / CATEGORIES_FILE). */
export type Category = {
  /** Lower-case identifier, `^[a-z][a-z0-9_-]{0,63}$`: what routing rules name in `conditions.category`. */
  name: string;
  /** What belongs here, for the model (goes into the prompt as a list). */
  description: string;
  /** Requests of this category get no reply and no action (automatic mail, marketing). */
  noReply: boolean;
};

export const CATEGORY_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
export const MAX_CATEGORIES = 50;
export const MAX_DESCRIPTION_CHARS = 300;

/**
 * The shipped list, for internal support of a fintech company. Written in the format CATEGORIES takes, so
 * `.env.example` and docs/llm.md can show it verbatim.
 */
export const DEFAULT_CATEGORIES_TEXT = [
  'analytics: аналитика и отчёты — срезы, дашборды, метрики, аналитические кубы',
  'payments: платежи и переводы — статусы, возвраты, эквайринг, комиссии',
  'cards: банковские карты — выпуск, блокировки, лимиты, операции по картам',
  'wallets: электронные кошельки — пополнения, операции, статусы кошельков',
  'access: доступы и учётные записи — права, роли, пароли, заведение пользователей',
  'incidents: инциденты и сбои — что-то не работает, ошибки, недоступность систем',
  'data_exports: выгрузки данных — разовые и регулярные выгрузки, реестры, файлы',
  'other: прочие рабочие вопросы, не подходящие под другие категории',
  'automatic (no_reply): автоматические письма — уведомления систем, автоответы, отчёты о доставке',
  'marketing (no_reply): реклама и рассылки — новости, предложения, приглашения на мероприятия',
].join('\n');

// `name: description` or `name (no_reply): description`.
const ENTRY = /^([^\s:()]+)\s*(?:\(\s*([^)]*?)\s*\))?\s*:\s*(.*)$/s;

/**
 * Parses the CATEGORIES format: entries separated by newlines or `;`, each `name: description`, with
 * `(no_reply)` after the name for categories that get no reply; blank entries and lines starting with `#` are
 * ignored. Returns the problems (each naming the entry) instead of throwing, so config can name the key.
 */
export function parseCategories(text: string): { categories: Category[]; problems: string[] } {
  const categories: Category[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  const entries = text
    .split(/[\n;]/)
    .map((e) => e.trim())
    .filter((e) => e && !e.startsWith('#'));
  for (const entry of entries) {
    const m = ENTRY.exec(entry);
    if (!m) {
      problems.push(`'${entry.slice(0, 60)}' must be 'name: description' or 'name (no_reply): description'`);
      continue;
    }
    const [, name, flag, rawDescription] = m;
    const description = rawDescription!.trim();
    if (!CATEGORY_NAME.test(name!)) {
      problems.push(`'${name}' must be lower-case latin letters, digits, '_' or '-', starting with a letter`);
      continue;
    }
    if (flag !== undefined && flag !== 'no_reply') {
      problems.push(`'${name}': unknown flag '(${flag})' (the only one is '(no_reply)')`);
      continue;
    }
    if (!description) problems.push(`'${name}' needs a description`);
    else if (description.length > MAX_DESCRIPTION_CHARS)
      problems.push(`'${name}': description over ${MAX_DESCRIPTION_CHARS} characters`);
    if (seen.has(name!)) problems.push(`'${name}' is listed twice`);
    seen.add(name!);
    categories.push({ name: name!, description, noReply: flag === 'no_reply' });
  }
  if (!problems.length && categories.length === 0) problems.push('lists no category');
  if (categories.length > MAX_CATEGORIES)
    problems.push(`lists ${categories.length} categories; at most ${MAX_CATEGORIES}`);
  return { categories, problems };
}

/**
 * The categories from the environment: CATEGORIES (the list itself) or CATEGORIES_FILE (a UTF-8 file in the same
 * format, one entry per line); neither: the shipped default. Throws ConfigError naming the key.
 */
export function loadCategories(source: { CATEGORIES?: string; CATEGORIES_FILE?: string }): {
  categories: Category[];
  source: string;
} {
  const inline = source.CATEGORIES?.trim();
  const file = source.CATEGORIES_FILE?.trim();
  if (inline && file) throw new ConfigError(['CATEGORIES_FILE: set either CATEGORIES or CATEGORIES_FILE, not both']);
  let key = 'CATEGORIES';
  let text = DEFAULT_CATEGORIES_TEXT;
  let from = 'built-in';
  if (inline) {
    text = inline;
    from = 'CATEGORIES';
  } else if (file) {
    key = 'CATEGORIES_FILE';
    from = file;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([
        `CATEGORIES_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      ]);
    }
  }
  const { categories, problems } = parseCategories(text);
  if (problems.length) throw new ConfigError(problems.map((p) => `${key}: ${p}`));
  return { categories, source: from };
}

/** The list the prompt carries: one line per category, `- name: description` (no_reply is the secretary's business). */
export function categoriesPromptSection(categories: readonly Category[]): string {
  return [
    'Категории обращений (поле "category" — ровно одно имя из списка):',
    ...categories.map((c) => `- ${c.name}: ${c.description}`),
    '',
    'В поле "confidence" укажи уверенность в выбранной категории числом от 0 до 1.',
  ].join('\n');
}
