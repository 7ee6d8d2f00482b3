import { describe, expect, it } from 'vitest';
import type { InstanceStatus } from '../../instance/api-types.js';
import { AGENT_STATUS_SCRIPT, positions, type AgentAnswer } from './agent-status.js';

const status = (over: Partial<InstanceStatus>): InstanceStatus => ({ instance: 'x', role: 'replica', running: true, fenced: false, timeline: 2, currentLsn: null, receiveLsn: null, replayLsn: null, streaming: true, ...over }) as InstanceStatus;

describe('agent positions', () => {
  it('the primary at its write location; replicas at their replay location and how far behind', () => {
    const answers: AgentAnswer[] = [
      { instance: 'db-1', pod: 'db-1-0', status: status({ instance: 'db-1', role: 'primary', currentLsn: '0/3000100', streaming: false }) },
      { instance: 'db-2', pod: 'db-2-0', status: status({ instance: 'db-2', receiveLsn: '0/3000100', replayLsn: '0/3000000' }) },
      { instance: 'db-3', pod: 'db-3-0', status: status({ instance: 'db-3', receiveLsn: '0/2000000', replayLsn: null, streaming: false }) },
      { instance: 'db-4', pod: 'db-4-0', error: 'container not running' },
    ];
    const at = positions(answers);
    expect(at.get('db-1')).toEqual({ timeline: 2, lsn: '0/3000100', lagBytes: undefined, streaming: undefined, fenced: false });
    expect(at.get('db-2')).toMatchObject({ lsn: '0/3000000', lagBytes: 0x100, streaming: true });
    expect(at.get('db-3')).toMatchObject({ lsn: '0/2000000', lagBytes: 0x1000100, streaming: false });
    expect(at.has('db-4')).toBe(false);
  });

  it('a replica ahead of a stale primary reading is not negative; without a primary there is no lag', () => {
    const ahead = positions([
      { instance: 'a', pod: 'a-0', status: status({ instance: 'a', role: 'primary', currentLsn: '0/100' }) },
      { instance: 'b', pod: 'b-0', status: status({ instance: 'b', replayLsn: '0/200' }) },
    ]);
    expect(ahead.get('b')!.lagBytes).toBe(0);
    expect(positions([{ instance: 'b', pod: 'b-0', status: status({ instance: 'b', replayLsn: '0/200' }) }]).get('b')!.lagBytes).toBeUndefined();
  });

  it('the in-pod script is valid JavaScript and reads the token from the mounted agent Secret', () => {
    expect(() => new Function('require', 'process', 'fetch', AGENT_STATUS_SCRIPT)).not.toThrow();
    expect(AGENT_STATUS_SCRIPT).toContain("/agent/token");
    expect(AGENT_STATUS_SCRIPT).toContain('PGPILOT_POD_IP');
  });
});
