#!/usr/bin/env node
// The `pgpilot` command: one entrypoint for every role (operator, instance agent, jobs, CLI).
import './node-version.js'; // first: refuses Node.js < 24 before the other modules load
import { Command } from 'commander';
import { operatorOptions, type OperatorSettings } from './operator-config.js';
import { runOperator } from './operator.js';
import { runInstanceAgent } from '../instance/agent.js';
import { backupCommand } from './backup.js';
import { upgradeCommand } from './upgrade.js';

const program = new Command('pgpilot').description('PostgreSQL on Kubernetes, on auto pilot').version('0.1.0');

const operator = program.command('operator').description('run the operator (watches PostgreSQLClusters and reconciles them)');
for (const o of operatorOptions()) operator.addOption(o);
operator.action(async (opts: OperatorSettings) => {
  await runOperator(opts);
});

const instance = program.command('instance').description('run the instance agent (PID 1 of a PostgreSQL pod; settings from PGPILOT_* environment variables)');
instance.action(async () => {
  await runInstanceAgent();
});

program.addCommand(backupCommand());
program.addCommand(upgradeCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(JSON.stringify({ level: 'error', msg: 'fatal', err: err instanceof Error ? err.stack : String(err) }));
  process.exit(1);
});
