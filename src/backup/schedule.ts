// Backup schedules: the CronJob runs them; the operator checks them first (a clear error on the
// field instead of a CronJob the apiserver refuses) and puts the next run in status. Schedules
// are UTC, like the CronJob's timeZone.
//
// Kubernetes parses CronJob schedules with robfig/cron (standard five fields: day-of-week 0–6, no
// L/W/#, "N/step" meaning N through the maximum). node-cron differs on those points, so the
// syntax Kubernetes accepts is checked here and then handed to node-cron in a form it reads the
// same way (N/step → N-max/step), which validates the values and computes the next run.
import cron from 'node-cron';
import { errorText } from '../util/error-text.js';

/** Kubernetes CronJobs take five fields or these macros; node-cron wants fields only. */
export const CRON_MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  { name: 'day-of-week', min: 0, max: 6, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
] as const;

type Field = (typeof FIELDS)[number];

function value(f: Field, text: string): number {
  const named = 'names' in f ? f.names.indexOf(text.toUpperCase() as never) : -1;
  if (named >= 0) return named + f.min;
  if (!/^\d+$/.test(text)) throw new Error(`"${text}" is not a number${'names' in f ? ' or a name' : ''} in the ${f.name} field`);
  const n = Number(text);
  if (n < f.min || n > f.max) throw new Error(`${n} is outside ${f.min}-${f.max} in the ${f.name} field`);
  return n;
}

/** One field in robfig/cron's grammar, rewritten for node-cron; throws on what Kubernetes refuses. */
function field(f: Field, text: string): string {
  return text
    .split(',')
    .map((part) => {
      const [range, step, extra] = part.split('/');
      if (extra !== undefined || range === '' || (step !== undefined && !/^[1-9]\d*$/.test(step))) throw new Error(`"${part}" is not a valid ${f.name} expression`);
      if (range === '*' || (range === '?' && (f.name === 'day-of-month' || f.name === 'day-of-week'))) return step ? `*/${step}` : '*';
      const [a, b, more] = range!.split('-');
      if (more !== undefined) throw new Error(`"${range}" is not a valid ${f.name} range`);
      const low = value(f, a!);
      const high = b !== undefined ? value(f, b) : step ? f.max : low;
      if (high < low) throw new Error(`the range "${range}" in the ${f.name} field ends before it starts`);
      return low === high && !step ? String(low) : `${low}-${high}${step ? `/${step}` : ''}`;
    })
    .join(',');
}

/** The schedule as node-cron reads it the way Kubernetes does, or throws why it is invalid. */
function normalise(schedule: string): string {
  const trimmed = schedule.trim();
  const expr = CRON_MACROS[trimmed] ?? trimmed;
  const parts = expr.split(/\s+/);
  if (parts.length !== FIELDS.length) throw new Error('must have five fields (minute hour day-of-month month day-of-week) or be a macro such as @daily');
  return parts.map((p, i) => field(FIELDS[i]!, p)).join(' ');
}

/** Why a schedule is not one Kubernetes CronJobs accept, or null when it is. */
export function scheduleProblem(schedule: string): string | null {
  try {
    const fields = normalise(schedule);
    const v = cron.validateDetailed(fields);
    return v.valid ? null : `"${schedule}" is not a valid cron schedule: ${v.errors.map((e) => e.message).join('; ')}`;
  } catch (err) {
    return `"${schedule}" is not a valid cron schedule: ${errorText(err)}`;
  }
}

/** The next run from now (UTC). */
export function nextRun(schedule: string): Date {
  const task = cron.createTask(normalise(schedule), () => undefined, { timezone: 'Etc/UTC' });
  try {
    // getNextRun() answers only for started tasks; getNextRuns() needs no timers.
    return task.getNextRuns(1)[0]!;
  } finally {
    void task.destroy();
  }
}
