// The epoch log's signed checkpoints: C2SP signed-note, tlog-checkpoint and tlog-cosignature
// (Ed25519), the epoch header, and one error class. Pure and browser-safe (@noble only): the
// verifier and the web page use it as the server does.
export { fromBase64, toBase64 } from './base64.ts';
export { CHECKPOINT_CODES, CheckpointError, isCheckpointError, type CheckpointCode } from './error.ts';
export {
  MAX_KEY_NAME_BYTES,
  MAX_NOTE_BYTES,
  MAX_SIGNATURES,
  SIG_COSIGNATURE_V1,
  SIG_ED25519,
  assertKeyName,
  ed25519Signer,
  ed25519Verifier,
  formatSignerKey,
  formatVerifierKey,
  generateSigningKey,
  keyId,
  keyNameProblem,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  signingKeyFromSeed,
  splitNote,
  verifierKeyOf,
  verifierOf,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  type SignatureType,
  type SigningKey,
  type VerifiedSignature,
} from './note.ts';
export {
  MAX_COSIGNATURE_TIME,
  cosignatureVerifier,
  cosignedMessage,
  cosigner,
  cosignerVerifierOf,
  parseCosignerKey,
  splitCosignature,
} from './cosignature.ts';
export { formatCheckpoint, parseCheckpoint, verifyCheckpoint, type Checkpoint, type VerifiedCheckpoint } from './checkpoint.ts';
export {
  EPOCH_HEADER_BYTES,
  EPOCH_HEADER_VERSION,
  decodeEpochHeader,
  encodeEpochHeader,
  epochLeafHash,
  type EpochHeader,
} from './epoch-header.ts';
