// A calling process with a spooled usage client (run by spool.test.ts).
//   record URL KEY SPOOL N   record N events, print "recorded", keep sending until killed
//   resume URL KEY SPOOL     resend what the spool holds, print the stats, exit
import { createUsageClient } from '../../src/index.ts';
import { createSqliteSpool } from '../../src/client/spool.ts';

const [mode, url, apiKey, file, n] = process.argv.slice(2);
const client = createUsageClient({
  url: url!,
  apiKey: apiKey!,
  spool: createSqliteSpool(file!),
  batchSize: 10,
  flushIntervalMs: 5,
  retry: { baseMs: 5, maxMs: 50 },
});
if (mode === 'record') {
  for (let i = 0; i < Number(n); i++) client.record({ namespace: 'acme/spool', action: 'recall', caller: 'c', units: i + 1 });
  process.stdout.write('recorded\n');
  setInterval(() => {}, 1000);
} else {
  await client.close();
  process.stdout.write(`${JSON.stringify(client.stats())}\n`);
}
