package chain

// CheckBlock checks the rules that need only the block and the network
// parameters (rules 2 to 5 of the package doc). The genesis block is not
// checked here: it is never received, only derived.
func CheckBlock(b *Block, p Params) error {
	h := &b.Header
	// Rule 2: a version and difficulty this network defines.
	if h.Version != HeaderVersion {
		return ruleErr(ErrBadVersion, "version %d, want %d", h.Version, HeaderVersion)
	}
	if h.Difficulty != p.Difficulty {
		return ruleErr(ErrBadDifficulty, "difficulty %d, network uses %d", h.Difficulty, p.Difficulty)
	}
	// Rule 3: proof of work, checked before anything costly.
	if hash := h.Hash(); !MeetsTarget(hash, h.Difficulty) {
		return ruleErr(ErrBadPoW, "hash %s has %d leading zero bits, want %d", hash.Short(), LeadingZeros(hash), h.Difficulty)
	}
	// Rule 4: reading count, no duplicates, and the root commits to the ids.
	if len(b.Readings) > p.MaxReadings {
		return ruleErr(ErrTooManyReadings, "%d readings, at most %d", len(b.Readings), p.MaxReadings)
	}
	ids := b.ReadingIDs()
	seen := make(map[Hash]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			return ruleErr(ErrDuplicateReading, "reading %s twice in the block", id.Short())
		}
		seen[id] = struct{}{}
	}
	if root := MerkleRoot(ids); root != h.Root {
		return ruleErr(ErrBadRoot, "header has %s, readings give %s", h.Root.Short(), root.Short())
	}
	// Rule 5: every reading well formed, signed, and not from after its block.
	for i := range b.Readings {
		r := &b.Readings[i]
		if r.Time < p.GenesisTime || r.Time > h.Time+p.MaxFutureDrift.Milliseconds() {
			return ruleErr(ErrBadReadingTime, "reading %s at %d is before genesis or after its block (%d)", ids[i].Short(), r.Time, h.Time)
		}
		if err := r.Check(); err != nil {
			return err
		}
	}
	return nil
}

// CheckReading checks a reading offered for the pending set: well formed,
// signed, and with a time between genesis and now plus the allowed drift.
func CheckReading(r *Reading, p Params, nowMillis int64) error {
	if r.Time < p.GenesisTime || r.Time > nowMillis+p.MaxFutureDrift.Milliseconds() {
		return ruleErr(ErrBadReadingTime, "reading time %d is before genesis or in the future", r.Time)
	}
	return r.Check()
}
