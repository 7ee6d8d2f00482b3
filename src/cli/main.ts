#!/usr/bin/env node
// The `pgpilot` command: one entrypoint for every role (operator, instance agent, jobs, CLI).
import './node-version.js'; // first: refuses Node.js < 24 before the other modules load
// Each role loads only its own modules (dynamic imports): the Kubernetes client and the S3 SDK
// cost close to a second of start-up, which a Job of a major upgrade pays while writes are refused.
import { Command } from 'commander';
import { operatorOptions, operatorSettingsProblem, type OperatorSettings } from './operator-config.js';

const program = new Command('pgpilot').description('PostgreSQL on Kubernetes, on auto pilot').version('0.1.0');

const operator = program.command('operator').description('run the operator (watches PostgreSQLClusters and reconciles them)');
for (const o of operatorOptions()) operator.addOption(o);
operator.hook('preAction', (cmd) => {
  const problem = operatorSettingsProblem(cmd.opts<OperatorSettings>());
  if (problem) cmd.error(`error: ${problem}`);
});
operator.action(async (opts: OperatorSettings) => {
  await (await import('./operator.js')).runOperator(opts);
});

const instance = program.command('instance').description('run the instance agent (PID 1 of a PostgreSQL pod; settings from PGPILOT_* environment variables)');
instance.action(async () => {
  await (await import('../instance/agent.js')).runInstanceAgent();
});

/** Commands defined in their own modules: the one invoked is loaded, or all for help and usage errors. */
const subcommands: Record<string, () => Promise<Command>> = {
  backup: async () => (await import('./backup.js')).backupCommand(),
  upgrade: async () => (await import('./upgrade.js')).upgradeCommand(),
};
const invoked = process.argv[2] ?? '';
for (const [name, load] of Object.entries(subcommands)) {
  if (invoked === name || !['operator', 'instance', ...Object.keys(subcommands)].includes(invoked)) program.addCommand(await load());
}

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(JSON.stringify({ level: 'error', msg: 'fatal', err: err instanceof Error ? err.stack : String(err) }));
  process.exit(1);
});
