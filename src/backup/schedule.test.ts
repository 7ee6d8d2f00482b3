// Backup schedules: cron fields and macros, the next run.
import { describe, expect, it } from 'vitest';
import { nextRun, scheduleProblem } from './schedule.js';

describe('backup schedules', () => {
  it.each(['0 2 * * *', '*/15 * * * *', '30 1 * * 1-5', '@daily', '@hourly', '@weekly', '@monthly', '@yearly', ' @midnight '])('accepts %j', (s) => {
    expect(scheduleProblem(s)).toBeNull();
  });

  it('refuses six fields (seconds) and other field counts', () => {
    expect(scheduleProblem('0 0 2 * * *')).toMatch(/must have five fields/);
    expect(scheduleProblem('0 2 * *')).toMatch(/must have five fields/);
    expect(scheduleProblem('@fortnightly')).toMatch(/must have five fields/);
  });

  // Bug: scheduleProblem() exists so that a schedule the apiserver would refuse on the CronJob is
  // refused on spec.backup.schedule instead, but it asks node-cron, and Kubernetes validates
  // CronJob schedules with robfig/cron v3 (cron.ParseStandard), whose day-of-week runs 0-6 ("7" is
  // "end of range (7) above maximum (6)") and which has no "L". Those pass here and the CronJob
  // is then refused by the apiserver.
  it.each(['0 2 * * 7', '0 2 * * 5-7', '0 2 L * *'])('refuses %j, which the apiserver refuses on a CronJob', (s) => {
    expect(scheduleProblem(s)).not.toBeNull();
  });

  // Bug, the other way: robfig/cron reads "N/step" as "N-max/step" and Kubernetes accepts it;
  // node-cron refuses it, so the operator refuses a schedule a CronJob would run.
  it('accepts "5/15 * * * *", which a CronJob accepts (minutes 5, 20, 35, 50)', () => {
    expect(scheduleProblem('5/15 * * * *')).toBeNull();
  });

  it('refuses minute 61, naming the value', () => {
    const p = scheduleProblem('61 * * * *');
    expect(p).toMatch(/not a valid cron schedule/);
    expect(p).toContain('61');
  });

  it('the next run is in the future and matches the schedule (UTC)', () => {
    const before = Date.now();
    const n = nextRun('0 2 * * *');
    expect(n).toBeInstanceOf(Date);
    expect(n.getTime()).toBeGreaterThan(before);
    expect(n.getTime() - before).toBeLessThanOrEqual(24 * 3600 * 1000);
    expect([n.getUTCHours(), n.getUTCMinutes(), n.getUTCSeconds()]).toEqual([2, 0, 0]);
  });

  it('macros have a next run too', () => {
    const n = nextRun('@daily');
    expect(n.getTime()).toBeGreaterThan(Date.now());
    expect([n.getUTCHours(), n.getUTCMinutes()]).toEqual([0, 0]);
    const h = nextRun('@hourly');
    expect(h.getUTCMinutes()).toBe(0);
    expect(h.getTime() - Date.now()).toBeLessThanOrEqual(3600 * 1000);
  });
});

/** A postgresql.conf line parsed back as PostgreSQL's guc-file.l reads it ('' and \-escapes). */
