import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POD_ENV } from '../../api/pod-env.js';
import { startLocalApiServer, type AgentApi } from '../../instance/api-server.js';
import { createLogger } from '../../runtime/logger.js';
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

  it("the in-pod script asks the agent's Unix socket with the mounted token and prints its answer", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agent-status-'));
    const socket = join(dir, 'agent.sock');
    const answer = status({ instance: 'db-2' });
    const api = { healthy: () => true, ready: () => true, status: async () => answer, operation: () => null } as unknown as AgentApi;
    const server = await startLocalApiServer({ api, token: async () => 'tok', log: createLogger('error', 'test') }, socket);
    try {
      await mkdir(join(dir, 'secrets/agent'), { recursive: true });
      await writeFile(join(dir, 'secrets/agent/token'), 'tok\n');
      const run = (env: Record<string, string>) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
          execFile(process.execPath, ['-e', AGENT_STATUS_SCRIPT], { env: { [POD_ENV.secretsDir]: join(dir, 'secrets'), ...env } }, (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stdout, stderr })),
        );
      const ok = await run({ [POD_ENV.agentSocket]: socket });
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toEqual(answer);
      await writeFile(join(dir, 'secrets/agent/token'), 'stale\n');
      expect((await run({ [POD_ENV.agentSocket]: socket })).code).toBe(1);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
