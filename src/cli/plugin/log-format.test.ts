import { describe, expect, it } from 'vitest';
import { colorsFor } from './ui.js';
import { aboutCluster, atLeast, formatLine, mergeByTime, parseLine, parseLines } from './log-format.js';

const plain = colorsFor({ isTTY: false });
const line = (o: Record<string, unknown>) => JSON.stringify(o);

describe('log lines', () => {
  it('a pino line: time, level, source/component, message, then the other fields', () => {
    const l = parseLine('db-1', line({ level: 'warn', time: '2026-12-05T05:00:00.123Z', component: 'instance', msg: 'postgres exited; restarting', pid: 42, signal: 'SIGKILL', err: 'two words' }));
    expect(formatLine(l, plain)).toBe('2026-12-05T05:00:00.123Z WARN  db-1/instance postgres exited; restarting pid=42 signal=SIGKILL err="two words"');
    expect(formatLine(l, plain, { hide: ['pid'] })).not.toContain('pid=');
    expect(formatLine(l, colorsFor({ isTTY: true }, {}))).toContain('\x1b[33m');
  });

  it('lines that are not JSON pass through, with the time of the line before them', () => {
    const lines = parseLines('db-1', `${line({ level: 'error', time: '2026-12-05T05:00:01Z', msg: 'boom' })}\n    at stack (x.js:1)\nplain text\n\n`);
    expect(lines).toHaveLength(3);
    expect(lines[1]!.time).toBe(Date.parse('2026-12-05T05:00:01Z'));
    expect(formatLine(lines[1]!, plain)).toBe('db-1     at stack (x.js:1)');
    expect(formatLine(parseLine('x', '{"not": "a log line"}'), plain)).toBe('x {"not": "a log line"}');
  });

  it('several sources merge in time order, each keeping its own order', () => {
    const a = parseLines('a', [line({ time: '2026-12-05T05:00:01Z', msg: 'a1' }), 'a-cont', line({ time: '2026-12-05T05:00:03Z', msg: 'a2' })].join('\n'));
    const b = parseLines('b', [line({ time: '2026-12-05T05:00:02Z', msg: 'b1' }), line({ time: '2026-12-05T05:00:01Z', msg: 'b0' })].join('\n'));
    expect(mergeByTime([a, b]).map((l) => l.json?.msg ?? l.raw)).toEqual(['a1', 'a-cont', 'b0', 'b1', 'a2']);
  });

  it('levels: named or pino numbers; lines without a level always pass', () => {
    expect(atLeast(parseLine('x', line({ level: 'info', msg: 'm' })), 'warn')).toBe(false);
    expect(atLeast(parseLine('x', line({ level: 50, msg: 'm' })), 'warn')).toBe(true);
    expect(atLeast(parseLine('x', 'plain'), 'error')).toBe(true);
  });

  it('operator lines about one cluster only', () => {
    expect(aboutCluster(parseLine('op', line({ msg: 'm', cluster: 'db', namespace: 'prod' })), 'db', 'prod')).toBe(true);
    expect(aboutCluster(parseLine('op', line({ msg: 'm', cluster: 'db', namespace: 'other' })), 'db', 'prod')).toBe(false);
    expect(aboutCluster(parseLine('op', line({ msg: 'm' })), 'db', 'prod')).toBe(false);
  });
});
