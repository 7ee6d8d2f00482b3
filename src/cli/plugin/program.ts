// The commands of `kubectl pgpilot` and their flags (main.ts runs them). One module per command,
// loaded only for the command that runs; this module needs commander alone, so help and usage
// errors answer at once. Exit codes: exit.ts (0 done, 1 failed, 2 usage, 3 not found,
// 4 forbidden, 5 apiserver unreachable, 130 interrupted).
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EXIT, PluginError } from './exit.js';
import type { GlobalOptions } from './kube.js';

export const PLUGIN_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** Default --timeout of each following command, in seconds. */
export const TIMEOUTS = { switchover: 180, backup: 1800, restore: 1800, hibernate: 600, restart: 1800, fence: 180, unfence: 600, reload: 60 } as const;

interface Io {
  out: (line: string) => void;
  signal: AbortSignal;
}

function common(cmd: Command): Command {
  return cmd
    .option('-n, --namespace <namespace>', 'namespace of the cluster (default: the kubeconfig context\'s, else "default")')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context to use')
    .option('--request-timeout <seconds>', 'longest wait for one API call', '10');
}

function following(cmd: Command, what: string, seconds: number): Command {
  return cmd.option('--wait', `follow ${what} (default)`).option('--no-wait', 'return once the change is sent').option('--timeout <seconds>', `give up following after this long`, String(seconds));
}

/** The exit code of the command that ran (set by action()). */
let exitCode: number = EXIT.ok;

/**
 * Runs one command's body; any error becomes a message on stderr and the exit code. A body may
 * return the exit code itself (psql: the session's). `interactive`: ^C belongs to the child the
 * body runs (psql cancels its query), so no handler of ours is installed.
 */
function action<A extends unknown[]>(body: (io: Io, ...args: A) => Promise<number | void>, o: { interactive?: boolean } = {}) {
  return async (...args: A): Promise<void> => {
    const ac = new AbortController();
    const onInt = () => {
      if (ac.signal.aborted) process.exit(EXIT.interrupted);
      // A command that follows says what goes on in the cluster and exits 130; any other, at once.
      ac.abort();
      setTimeout(() => process.exit(EXIT.interrupted), 2000).unref();
    };
    if (!o.interactive) process.on('SIGINT', onInt);
    try {
      const code = await body({ out: (line) => process.stdout.write(`${line}\n`), signal: ac.signal }, ...args);
      if (typeof code === 'number') exitCode = code;
    } catch (err) {
      const code = err instanceof PluginError ? err.exitCode : EXIT.failed;
      const message = err instanceof Error ? err.message : String(err);
      if (!(err instanceof PluginError)) process.stderr.write(`${err instanceof Error ? (err.stack ?? message) : message}\n`);
      const red = process.stderr.isTTY && !process.env.NO_COLOR;
      process.stderr.write(`${red ? '\x1b[31merror:\x1b[0m' : 'error:'} ${message}\n`);
      exitCode = code;
    } finally {
      process.off('SIGINT', onInt);
    }
  };
}

async function connect(opts: GlobalOptions) {
  return (await import('./kube.js')).Kube.connect(opts);
}

async function progress() {
  const { Progress } = await import('./ui.js');
  return new Progress(process.stderr);
}

/** A following command whose timeout says whether an operator pod runs (operator-hint.ts). */
async function withHint<T>(kube: Awaited<ReturnType<typeof connect>>, run: () => Promise<T>): Promise<T> {
  return (await import('./operator-hint.js')).withOperatorHint(kube, run);
}

async function seconds(option: string, value: string | undefined, fallback: number): Promise<number> {
  return (await import('./kube.js')).parseSeconds(option, value, fallback) * 1000;
}

export function buildProgram(): Command {
  const program = new Command('kubectl-pgpilot')
    .description('kubectl pgpilot: status, switchover, backup, restore, restart, reload, fencing, hibernation, psql, logs and support reports of pgpilot PostgreSQL clusters')
    .version(PLUGIN_VERSION, '--plugin-version', 'print the plugin\'s version only')
    .showHelpAfterError()
    .exitOverride();

  common(program.command('status').argument('<cluster>', 'PostgreSQLCluster name').description('phase, versions, primary, instances, archiving, upgrade, conditions and recent events of a cluster'))
    .addOption(new Option('-o, --output <format>', 'json or yaml instead of text').choices(['json', 'yaml']))
    .option('--no-agents', 'do not ask the instances\' agents (through pods/exec) for timeline, LSN and lag')
    .action(action(async (io, cluster: string, opts: GlobalOptions & { output?: string; agents?: boolean }) => {
      const { collectStatus, parseOutput, renderStatus } = await import('./status.js');
      const { colorsFor } = await import('./ui.js');
      const format = parseOutput(opts.output);
      const kube = await connect(opts);
      process.stdout.write(renderStatus(await collectStatus(kube, cluster, { agents: opts.agents !== false }), format, colorsFor(process.stdout)));
    }));

  following(
    common(program.command('switchover').argument('<cluster>', 'PostgreSQLCluster name').description('make another instance the primary (spec.primary) and follow until it is')),
    'until the new primary is in place',
    TIMEOUTS.switchover,
  )
    .option('--to <instance>', 'the instance to promote (default: the most caught-up ready replica)')
    .action(action(async (io, cluster: string, opts: GlobalOptions & { to?: string; wait?: boolean; timeout?: string }) => {
      const timeoutMs = await seconds('--timeout', opts.timeout, TIMEOUTS.switchover);
      const kube = await connect(opts);
      const { runSwitchover } = await import('./switchover.js');
      const { collectStatus } = await import('./status.js');
      const p = await progress();
      try {
        await runSwitchover(kube, cluster, { to: opts.to, timeoutMs, wait: opts.wait !== false }, (withAgents) => collectStatus(kube, cluster, { agents: withAgents }), io.out, p, io.signal);
      } finally {
        p.end();
      }
    }));

  following(common(program.command('backup').argument('<cluster>', 'PostgreSQLCluster name').description('take a base backup now (a PostgreSQLBackup) and follow it')), 'the backup until it completed or failed', TIMEOUTS.backup)
    .option('--name <name>', 'name of the PostgreSQLBackup (default: <cluster>-<UTC time>)')
    .action(action(async (io, cluster: string, opts: GlobalOptions & { name?: string; wait?: boolean; timeout?: string }) => {
      const timeoutMs = await seconds('--timeout', opts.timeout, TIMEOUTS.backup);
      const { runBackup, checkBackupName } = await import('./backup.js');
      if (opts.name !== undefined) checkBackupName(opts.name);
      const kube = await connect(opts);
      const p = await progress();
      try {
        await runBackup(kube, cluster, { name: opts.name, wait: opts.wait !== false, timeoutMs }, io.out, p, io.signal);
      } finally {
        p.end();
      }
    }));

  following(
    common(program.command('restore').argument('<new-name>', 'name of the cluster to create').description('create a cluster from a backup (a PostgreSQLBackup, or the newest completed one of a cluster) and follow it to Ready')),
    'the new cluster until it is Ready',
    TIMEOUTS.restore,
  )
    .requiredOption('--from <backup-or-cluster>', 'a completed PostgreSQLBackup, or a cluster (its newest completed backup)')
    .option('--to-time <time>', 'recover up to this RFC 3339 time')
    .option('--to-lsn <lsn>', 'recover up to this WAL location (e.g. 0/3000060)')
    .option('--to-name <restore-point>', 'recover up to this restore point (pg_create_restore_point)')
    .option('--version <version>', 'PostgreSQL version of the new cluster (default: the source\'s)')
    .option('--instances <n>', 'instances of the new cluster', '1')
    .action(action(async (io, newName: string, opts: GlobalOptions & { from: string; toTime?: string; toLsn?: string; toName?: string; version?: string; instances?: string; wait?: boolean; timeout?: string }) => {
      const timeoutMs = await seconds('--timeout', opts.timeout, TIMEOUTS.restore);
      const { runRestore, checkRestoreArgs, recoveryTarget } = await import('./restore.js');
      const args = { from: opts.from, newName, toTime: opts.toTime, toLsn: opts.toLsn, toName: opts.toName, version: opts.version, instances: opts.instances };
      checkRestoreArgs(args);
      recoveryTarget(args);
      const kube = await connect(opts);
      const p = await progress();
      try {
        await runRestore(kube, args, { wait: opts.wait !== false, timeoutMs }, io.out, p, io.signal);
      } finally {
        p.end();
      }
    }));

  following(
    common(program.command('hibernate').argument('<cluster>', 'PostgreSQLCluster name').argument('<on|off>', 'on: stop every instance, keeping the volumes; off: start them again').description('stop (on) or start (off) every instance of a cluster (spec.hibernation) and follow until done')),
    'until the Hibernated condition says so',
    TIMEOUTS.hibernate,
  ).action(action(async (io, cluster: string, onOff: string, opts: GlobalOptions & { wait?: boolean; timeout?: string }) => {
    const timeoutMs = await seconds('--timeout', opts.timeout, TIMEOUTS.hibernate);
    const { runHibernate, parseOnOff } = await import('./hibernate.js');
    const on = parseOnOff(onOff);
    const kube = await connect(opts);
    const p = await progress();
    try {
      await runHibernate(kube, cluster, { on, timeoutMs, wait: opts.wait !== false }, io.out, p, io.signal);
    } finally {
      p.end();
    }
  }));

  following(
    common(
      program
        .command('restart')
        .argument('<cluster>', 'PostgreSQLCluster name')
        .argument('[instance]', 'restart this instance only (a replica in place; the primary after a switchover to a ready replica)')
        .description('restart every instance (or one) through the operator\'s rollout: replicas first, then a switchover and the old primary'),
    ),
    'until the instances run the restarted template',
    TIMEOUTS.restart,
  ).action(action(async (io, cluster: string, instance: string | undefined, opts: GlobalOptions & { wait?: boolean; timeout?: string }) => {
    const timeoutMs = await seconds('--timeout', opts.timeout, TIMEOUTS.restart);
    const { runRestart, runRestartInstance } = await import('./restart.js');
    const kube = await connect(opts);
    const p = await progress();
    try {
      const o = { timeoutMs, wait: opts.wait !== false };
      await withHint(kube, () => (instance === undefined ? runRestart(kube, cluster, o, io.out, p, io.signal) : runRestartInstance(kube, cluster, instance, o, io.out, p, io.signal)));
    } finally {
      p.end();
    }
  }));

  for (const fence of [true, false]) {
    const verb = fence ? 'fence' : 'unfence';
    following(
      common(
        program
          .command(verb)
          .argument('<cluster>', 'PostgreSQLCluster name')
          .argument('<instance>', `the instance to ${verb}`)
          .description(
            fence
              ? 'stop an instance\'s PostgreSQL and keep it stopped (postgres.pgpilot.io/fenced-instances): its pod stays, not Ready and in no Service; a fenced primary is not failed over'
              : 'start a fenced instance again: a replica rejoins the primary, a fenced primary is the primary again',
          ),
      ),
      fence ? 'until the instance is fenced' : 'until the instance is back (a replica streaming, the primary accepting writes)',
      TIMEOUTS[verb],
    ).action(action(async (io, cluster: string, instance: string, opts: GlobalOptions & { wait?: boolean; timeout?: string }) => {
      const timeoutMs = await seconds('--timeout', opts.timeout, TIMEOUTS[verb]);
      const { runFence } = await import('./fence.js');
      const kube = await connect(opts);
      const p = await progress();
      try {
        await withHint(kube, () => runFence(kube, cluster, instance, { fence, timeoutMs, wait: opts.wait !== false }, io.out, p, io.signal));
      } finally {
        p.end();
      }
    }));
  }

  following(
    common(program.command('reload').argument('<cluster>', 'PostgreSQLCluster name').description('make every running instance re-read its configuration now (pg_reload_conf()) through the operator')),
    'until the operator has reloaded every running instance',
    TIMEOUTS.reload,
  ).action(action(async (io, cluster: string, opts: GlobalOptions & { wait?: boolean; timeout?: string }) => {
    const timeoutMs = await seconds('--timeout', opts.timeout, TIMEOUTS.reload);
    const { runReload } = await import('./reload.js');
    const kube = await connect(opts);
    const p = await progress();
    try {
      await withHint(kube, () => runReload(kube, cluster, { timeoutMs, wait: opts.wait !== false }, io.out, p, io.signal));
    } finally {
      p.end();
    }
  }));

  common(
    program
      .command('psql')
      .argument('<cluster>', 'PostgreSQLCluster name')
      .argument('[psql-args...]', 'passed to psql (after --), e.g. -- -c "select 1"')
      .description('psql in the primary\'s pod (or a replica\'s) through kubectl exec, as postgres over the pod\'s Unix socket (peer authentication: no password travels)'),
  )
    .option('--replica', 'connect to a ready replica instead of the primary')
    .option('--instance <name>', 'connect to this instance, whatever its role')
    .option('-d, --dbname <database>', 'database (default: the cluster\'s application database, spec.bootstrap.initdb.database)')
    .action(
      action(async (io, cluster: string, extra: string[], opts: GlobalOptions & { replica?: boolean; instance?: string; dbname?: string }) => {
        const { runPsql } = await import('./psql.js');
        return runPsql(await connect(opts), opts, cluster, { replica: opts.replica, instance: opts.instance, dbname: opts.dbname, extra }, (line) => process.stderr.write(`${line}\n`));
      }, { interactive: true }),
    );

  common(
    program
      .command('logs')
      .argument('<cluster>', 'PostgreSQLCluster name')
      .argument('[instance]', 'only this instance (default: every instance)')
      .description('the JSON logs of the instances (agent and PostgreSQL) or of the operator\'s work on the cluster, pretty-printed'),
  )
    .option('--operator', 'the operator\'s log lines about this cluster instead')
    .option('-f, --follow', 'keep printing new lines until ^C')
    .option('--tail <lines>', 'only the newest lines of each log (-1: all)', '-1')
    .option('-p, --previous', 'the log of the previous container instance (before its last restart)')
    .option('--level <level>', 'only lines at this level or above (trace, debug, info, warn, error, fatal)')
    .option('--raw', 'the JSON lines as they are')
    .action(
      action(async (io, cluster: string, instance: string | undefined, opts: GlobalOptions & { operator?: boolean; follow?: boolean; tail?: string; previous?: boolean; level?: string; raw?: boolean }) => {
        const { runLogs, parseLevel, parseTail } = await import('./logs.js');
        const { colorsFor } = await import('./ui.js');
        const o = { instance, operator: opts.operator, follow: opts.follow, tail: parseTail(opts.tail), previous: opts.previous, level: parseLevel(opts.level), raw: opts.raw };
        return runLogs(await connect(opts), cluster, o, colorsFor(process.stdout), io.out, (line) => process.stderr.write(`${line}\n`), io.signal);
      }),
    );

  common(program.command('report').argument('<cluster>', 'PostgreSQLCluster name').description('a support bundle (.tar.gz): the cluster, its objects (Secret values redacted), events, logs, agent statuses, the operator\'s log lines about it'))
    .option('-o, --output <file>', 'where to write it (default: pgpilot-report-<namespace>-<cluster>-<time>.tar.gz here)')
    .action(
      action(async (io, cluster: string, opts: GlobalOptions & { output?: string }) => {
        const { runReport } = await import('./report.js');
        await runReport(await connect(opts), cluster, { output: opts.output }, io.out);
      }),
    );

  common(program.command('version').description('the plugin\'s version and the operator\'s (the image tag of its running pods)')).action(action(async (io, opts: GlobalOptions) => {
    io.out(`plugin:   ${PLUGIN_VERSION}`);
    let operator: string;
    try {
      const kube = await connect(opts);
      operator = await (await import('./version.js')).operatorVersion(kube);
    } catch (err) {
      operator = `unknown (${err instanceof Error ? err.message : String(err)})`;
    }
    io.out(`operator: ${operator}`);
  }));

  return program;
}

/** Parses argv and runs the command; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  exitCode = EXIT.ok;
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw err;
  }
  return exitCode;
}
