// Package proof is the regulator's proof of compliance, without I/O: the
// canonical, versioned encodings of the facts that decide compliance (log
// entries), the RFC 6962 Merkle log's signed checkpoints (C2SP tlog
// checkpoints as signed notes), the per-obligation certificate, and its
// offline verification.
//
// Every settled fill, every obligation computation and state change, every
// attribution of a sale, every licence event and every report version is one
// leaf of one append-only log. A leaf's data is "satu-log/v1 <kind>\n"
// followed by the entry's JSON: fields in a fixed order, amounts as decimal
// strings in whole units, times in RFC 3339 UTC to the millisecond. The
// leaf hash is tlog.RecordHash(data): SHA-256 of 0x00 and the data.
//
// A certificate carries the exact leaf data of each entry it relies on,
// with the entry's index and its inclusion proof to the one checkpoint it
// includes, so a verifier needs nothing but the certificate, the exchange's
// public key and the rule sets compiled into the verifier.
package proof
