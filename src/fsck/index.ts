// `receipts fsck`'s logic, apart from any database: give it a LedgerReader (src/ledger/index.ts
// openReader) and it checks every epoch's tree, root, leaves, sequence and boundaries.
export { fsck, type FsckCode, type FsckOptions, type FsckProblem, type FsckProgress, type FsckReport } from './check.ts';
export { UnreadableLedgerError, type LedgerReader } from './reader.ts';
export { describeValue, kindProblem, rowProblem, type Kind, type Row, type Shape } from './rows.ts';
