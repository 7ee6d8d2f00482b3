#!/usr/bin/env node
// `kubectl pgpilot`, the kubectl plugin (bin kubectl-pgpilot; `pgpilot` is the server command).
import '../node-version.js'; // first: refuses Node.js < 24 before the other modules load
import { main } from './program.js';

const code = await main(process.argv);
// Keep-alive sockets of the Kubernetes client would hold the process open: exit once output is out.
process.stdout.write('', () => process.exit(code));
