// The witness's own state, in its own small SQLite file (the witness is a separate process from
// any ledger): per log origin, the latest checkpoint it cosigned. The check against it and the
// write of the new one run in one IMMEDIATE transaction, so two requests (or two processes on
// the same file) can never roll a log back (the race tlog-witness describes).
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Cosigned, WitnessedState } from './protocol.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS witnessed (
  origin     TEXT PRIMARY KEY,
  size       INTEGER NOT NULL CHECK (size > 0),
  root       BLOB NOT NULL CHECK (length(root) = 32),
  note       TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);`;

export class WitnessStore {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement<[string]>;
  private readonly putStmt: Database.Statement<[string, number, Uint8Array, string, number]>;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL'); // a cosignature is answered only once its state is on disk
    this.db.exec(SCHEMA);
    this.getStmt = this.db.prepare('SELECT size, root FROM witnessed WHERE origin = ?');
    this.putStmt = this.db.prepare(
      `INSERT INTO witnessed (origin, size, root, note, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note, updated_at = excluded.updated_at`,
    );
  }

  state(origin: string): WitnessedState {
    const row = this.getStmt.get(origin) as { size: number; root: Buffer } | undefined;
    return row ? { size: row.size, root: new Uint8Array(row.root) } : { size: 0, root: null };
  }

  /**
   * Reads the origin's state, lets `decide` check the request against it (throwing refuses and
   * writes nothing), and stores what it cosigned, all in one write transaction.
   */
  cosign(origin: string, decide: (state: WitnessedState) => Cosigned, now = Date.now()): Cosigned {
    return this.db
      .transaction(() => {
        const out = decide(this.state(origin));
        this.putStmt.run(out.origin, out.size, out.root, out.note, now);
        return out;
      })
      .immediate();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
