package chain

import "time"

// The checks that need only the block and the network parameters, split by
// cost so that (*Chain).Process can run the cheap ones first: CheckHeader
// hashes one header, CheckBody hashes the readings, and the signatures are
// what costs (about 50 µs a reading).

// CheckHeader checks the rules of a header alone: a version and difficulty
// this network defines, a reading count within its limit, and the proof of
// work. The genesis block is not checked here: it is never received, only
// derived.
func CheckHeader(h *Header, p Params) error {
	if h.Version != HeaderVersion {
		return ruleErr(ErrBadVersion, "version %d, want %d", h.Version, HeaderVersion)
	}
	if h.Difficulty != p.Difficulty {
		return ruleErr(ErrBadDifficulty, "difficulty %d, network uses %d", h.Difficulty, p.Difficulty)
	}
	if uint64(h.Count) > uint64(p.MaxReadings) {
		return ruleErr(ErrTooManyReadings, "%d readings, at most %d", h.Count, p.MaxReadings)
	}
	if hash := h.Hash(); !MeetsTarget(hash, h.Difficulty) {
		return ruleErr(ErrBadPoW, "hash %s has %d leading zero bits, want %d", hash.Short(), LeadingZeros(hash), h.Difficulty)
	}
	return nil
}

// CheckBody checks a block's readings against its header without verifying
// a signature: the count matches, no reading twice, the readings root
// commits to every reading (signatures included), and every reading's
// fields and time are in range. It returns the reading ids.
func CheckBody(b *Block, p Params) ([]Hash, error) {
	h := &b.Header
	if uint64(len(b.Readings)) != uint64(h.Count) {
		return nil, ruleErr(ErrBadCount, "header says %d readings, the block has %d", h.Count, len(b.Readings))
	}
	ids := b.ReadingIDs()
	seen := make(map[Hash]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			return nil, ruleErr(ErrDuplicateReading, "reading %s twice in the block", id.Short())
		}
		seen[id] = struct{}{}
	}
	if p.Consensus != Authority && b.hasTrailer() {
		return nil, ruleErr(ErrBadSeal, "membership changes or a seal on a proof-of-work network")
	}
	if len(b.Changes)%ChangeSize != 0 || len(b.Changes) > MaxChanges*ChangeSize || len(b.Seal) > MaxSealSize {
		return nil, ruleErr(ErrMalformed, "%d bytes of changes and a %d-byte seal", len(b.Changes), len(b.Seal))
	}
	if root := BodyRoot(MerkleRoot(b.leaves(ids)), b.Changes); root != h.Root {
		return nil, ruleErr(ErrBadRoot, "header has %s, readings give %s", h.Root.Short(), root.Short())
	}
	latest := addMillis(h.Time, p.MaxFutureDrift.Milliseconds())
	for i := range b.Readings {
		r := &b.Readings[i]
		if r.Time < p.GenesisTime || r.Time > latest {
			return nil, ruleErr(ErrBadReadingTime, "reading %s at %d is before genesis or after its block (%d)", ids[i].Short(), r.Time, h.Time)
		}
		if err := r.CheckFields(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// CheckSignatures verifies every reading's signature, skipping those cache
// holds as verified already and adding those it verifies (cache may be nil).
func CheckSignatures(b *Block, ids []Hash, cache *SigCache) error {
	for i := range b.Readings {
		r := &b.Readings[i]
		if cache.Has(ids[i], &r.Sig) {
			continue
		}
		if err := r.CheckSignature(); err != nil {
			return err
		}
		cache.Add(ids[i], &r.Sig)
	}
	return nil
}

// CheckBlock checks every rule that needs only the block and the network
// parameters, in the order (*Chain).Process does: CheckHeader, CheckBody,
// CheckSignatures (without a cache).
func CheckBlock(b *Block, p Params) error {
	if err := CheckHeader(&b.Header, p); err != nil {
		return err
	}
	ids, err := CheckBody(b, p)
	if err != nil {
		return err
	}
	return CheckSignatures(b, ids, nil)
}

// CheckReading checks a reading offered for the pending set: well formed,
// signed, and with a time between genesis and now plus the allowed drift.
// A signature that verifies is added to cache (which may be nil), so the
// block that later carries the reading does not verify it again.
func CheckReading(r *Reading, p Params, nowMillis int64, cache *SigCache) error {
	if r.Time < p.GenesisTime {
		return ruleErr(ErrBadReadingTime, "reading time %s is before the network's genesis block (%s)", fmtMillis(r.Time), fmtMillis(p.GenesisTime))
	}
	if latest := addMillis(nowMillis, p.MaxFutureDrift.Milliseconds()); r.Time > latest {
		return ruleErr(ErrBadReadingTime, "reading time %s is in the future: more than %s after this node's clock (%s)",
			fmtMillis(r.Time), p.MaxFutureDrift, fmtMillis(nowMillis))
	}
	if err := r.CheckFields(); err != nil {
		return err
	}
	id := r.ID()
	if cache.Has(id, &r.Sig) {
		return nil
	}
	if err := r.CheckSignature(); err != nil {
		return err
	}
	cache.Add(id, &r.Sig)
	return nil
}

// fmtMillis formats Unix milliseconds for messages: RFC 3339 in UTC.
func fmtMillis(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }
