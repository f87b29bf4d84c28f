package main

import (
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// openStore opens the chain store of a data directory and reads the state a
// node starts from.
func openStore(dir *datadir.Dir, params chain.Params, opts ...store.Option) (*store.Store, node.State, error) {
	// A store of another network is explained by the caller, which knows
	// where the network settings came from (nodeSettings.wrongNetwork).
	st, err := store.Open(dir.File(datadir.StoreDir), params, opts...)
	if err != nil {
		return nil, node.State{}, err
	}
	s, err := st.LoadRecent()
	if err != nil {
		st.Close()
		return nil, node.State{}, err
	}
	return st, *s, nil
}
