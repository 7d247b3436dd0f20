// The Node check of the package (the CLI has its own, in plain JS: src/cli/receipts.js). Edge-safe:
// outside Node (browsers, edge runtimes) there is nothing to check.

/** The oldest Node the package runs on: older ones crash in the SQLite binding with a bare segmentation fault. */
export const MIN_NODE_MAJOR = 22;

/** A sentence saying which Node is needed and how to run on it, or undefined when this one will do. */
export function nodeVersionProblem(what: string): string | undefined {
  const version = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  if (typeof version !== 'string') return undefined;
  const major = Number(version.split('.')[0]);
  if (!(major < MIN_NODE_MAJOR)) return undefined;
  return (
    `${what} needs Node.js ${MIN_NODE_MAJOR} or newer; this is Node ${version}. ` +
    'Run your script on a newer Node: in a checkout of sui-receipts, `npx node your-script.ts` (or `npm exec -- node your-script.js`) uses the pinned Node 24 from node_modules/.bin; ' +
    'elsewhere `npx node@24 your-script.js`, or install Node 22+ (e.g. `nvm install 24`).'
  );
}
