import { describe, expect, it } from 'vitest';
import { reloadOutcome, reloadTargets } from './reload-plan.js';

const NOW = new Date('2026-12-05T03:00:00Z');
const AT = '2026-12-05T02:59:59.000Z';

describe('reload on request', () => {
  it('asks only for a new value, and only instances whose PostgreSQL runs', () => {
    const instances = [
      { name: 'db-1', running: true },
      { name: 'db-2', running: false },
    ];
    expect(reloadTargets(undefined, undefined, instances)).toBeUndefined();
    expect(reloadTargets(AT, { requestedAt: AT, completedAt: AT, instances: ['db-1'] }, instances)).toBeUndefined();
    expect(reloadTargets(AT, undefined, instances)).toEqual({ requestedAt: AT, ask: ['db-1'], notRunning: ['db-2'] });
  });

  it('records what reloaded, what did not run and what failed; a Warning when one failed', () => {
    const ok = reloadOutcome({ requestedAt: AT, ask: ['db-1'], notRunning: ['db-2'] }, [{ name: 'db-1' }], NOW);
    expect(ok.status).toEqual({ requestedAt: AT, completedAt: NOW.toISOString(), instances: ['db-1'] });
    expect(ok.event).toEqual({ type: 'Normal', reason: 'Reloaded', message: `Reload requested at ${AT}: reloaded the configuration of db-1; not running: db-2 (it reads it when it starts)` });
    const bad = reloadOutcome({ requestedAt: AT, ask: ['db-1', 'db-2'], notRunning: [] }, [{ name: 'db-1' }, { name: 'db-2', error: 'HTTP 409' }], NOW);
    expect(bad.status).toMatchObject({ instances: ['db-1'], failed: ['db-2: HTTP 409'] });
    expect(bad.event.type).toBe('Warning');
  });
});
