// The package's public surface. Everything exported here is browser-safe except where noted.
export {
  assertReceipt,
  verifyReceipt,
  VerificationError,
  VERIFY_CODES,
  type VerifiedReceipt,
  type VerifyCode,
  type VerifyFailure,
  type VerifyOptions,
  type VerifyResult,
  type VerifyStep,
} from './verify/index.ts';
export type { Receipt, ReceiptEvent, Anchor, ReceiptStatus } from './receipt/format.ts';
export { encodeLeaf, leafHash, LeafV1Bcs, LEAF_VERSION, type LeafFields } from './event/leaf.ts';
export { verifyInclusion, rootFromInclusionProof } from './merkle/proof.ts';
export { buildTree, auditPath, rootOf } from './merkle/tree.ts';
export {
  classify,
  classOf,
  periodAt,
  effectiveHistory,
  validateHistory,
  validatePolicy,
  UNCONFIGURED,
  ACTION_CLASSES,
  type ActionClass,
  type ClassificationPeriod,
  type ClassificationPolicy,
} from './event/classification.ts';
export {
  createUsageClient,
  UsageClientError,
  USAGE_CLIENT_ERROR_CODES,
  type UsageClientErrorCode,
  type UsageClient,
  type UsageClientOptions,
  type UsageClientStats,
  type UsageEventInput,
  type QueuedEvent,
  type Rejection,
  type Spool,
  type SpoolQuarantine,
  createHttpSink,
  createMemorySink,
  registerSink,
  registeredSinks,
  type Sink,
  type SinkAnswer,
  type SinkFactory,
  type SinkResult,
  type MemorySink,
  type HttpSinkOptions,
} from './client/index.ts';
